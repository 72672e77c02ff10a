#!/usr/bin/env bash
# Regenerate sparkplug_b_pb2.py (runtime module) and sparkplug_b_pb2.pyi (typed stub for mypy)
# from sparkplug_b.proto.
#
# The compiler is pinned: grpcio-tools 1.85.1 bundles protoc 35.1, whose gencode declares
# protobuf 7.35.1. A protobuf 7 runtime loads gencode no newer than itself without a warning
# (checked with 7.36.2, the project's pin) and refuses newer gencode, so move to a newer
# compiler only together with the protobuf pin. mypy-protobuf writes a stub that passes
# mypy --strict (protoc's own --pyi_out does not).
#
# Tools go into a throw-away virtualenv so the project's environment is not touched:
#   bash src/kiln/connectors/sparkplug/generate.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$(cd "$here/../../.." && pwd)"
# SPARKPLUG_TOOLS_VENV reuses (or creates) a tools virtualenv; otherwise a temporary one is made
# and removed again.
if [ -n "${SPARKPLUG_TOOLS_VENV:-}" ]; then
  tools="$SPARKPLUG_TOOLS_VENV"
else
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' EXIT
  tools="$scratch/venv"
fi

if [ ! -x "$tools/bin/python" ]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet \
    grpcio-tools==1.85.1 mypy-protobuf==5.1.0 protobuf==7.36.2 types-protobuf==7.35.1.20260906
fi

cd "$src"
PATH="$tools/bin:$PATH" "$tools/bin/python" -m grpc_tools.protoc \
  --proto_path=. \
  --python_out=. \
  --mypy_out=. \
  kiln/connectors/sparkplug/sparkplug_b.proto
echo "generated $here/sparkplug_b_pb2.py and $here/sparkplug_b_pb2.pyi"
