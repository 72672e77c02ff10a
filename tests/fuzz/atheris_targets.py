"""Coverage-guided fuzzing of the same parsers with atheris (libFuzzer), for runs by hand.

Not a pytest module (see `fuzz_budget` for why CI runs Hypothesis instead). Each target feeds
libFuzzer's bytes to one parser and lets any exception other than the parser's documented
error escape, which libFuzzer reports and saves as `crash-*` for a regression test:

    pip install atheris          # a wheel exists for CPython 3.11 on Linux x86-64
    python tests/fuzz/atheris_targets.py TARGET [CORPUS_DIR] -max_total_time=300

TARGET is one of: sparkplug, sparkplug-columns, modbus, line-protocol, json, arrow-stream,
arrow-file, parquet. A corpus of valid inputs (e.g. a few small Arrow files) gets the bulk
targets past the format's header far sooner than random bytes do.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

# Third-party modules first, so that only Kiln's own code is instrumented (instrumenting
# NumPy and Arrow takes minutes and adds nothing: their C code is not covered anyway).
import google.protobuf.message  # noqa: F401
import numpy  # noqa: F401
import pyarrow
import pyarrow.parquet  # noqa: F401

NOW_US = 1_767_225_600_000_000


def _targets() -> dict[str, Callable[[bytes], None]]:
    from kiln.connectors.http import bulk, codec, line_protocol
    from kiln.connectors.modbus.codec import DataType, Order, RegisterSpec, Table, decode
    from kiln.connectors.sparkplug.codec import DataType as SparkplugType
    from kiln.connectors.sparkplug.codec import decode_payload, encode_payload
    from kiln.connectors.sparkplug.data_columns import Defined, decode_data
    from kiln.connectors.sparkplug.errors import PayloadError
    from kiln.core.admission import TimeWindow

    window = TimeWindow.at(NOW_US, 600)
    defined = {i: Defined(i, t) for i, t in enumerate(SparkplugType)}
    named = {f"m{i}": d for i, d in defined.items()}

    def sparkplug(data: bytes) -> None:
        try:
            payload = decode_payload(data)
            decode_payload(encode_payload(payload))
        except PayloadError:
            pass

    def sparkplug_columns(data: bytes) -> None:
        with contextlib.suppress(PayloadError):
            decode_data(data, defined, named, 0)

    def modbus(data: bytes) -> None:
        if len(data) < 3:
            return
        data_type = list(DataType)[data[0] % len(DataType)]
        count = 1 + data[1] % 8 if data_type is DataType.STRING else None
        orders = list(Order)
        word_order, byte_order = orders[data[2] & 1], orders[data[2] >> 1 & 1]
        spec = RegisterSpec(
            Table.HOLDING_REGISTER, 0, data_type, count=count, word_order=word_order,
            byte_order=byte_order,
        )  # fmt: skip
        words = [int.from_bytes(data[i : i + 2], "big") for i in range(3, len(data) - 1, 2)]
        with contextlib.suppress(ValueError):
            decode(spec, words[: spec.width])

    def line_protocol_(data: bytes) -> None:
        with contextlib.suppress(codec.BodyError):
            line_protocol.parse_body(
                data, gzipped=False, max_inflated_bytes=1 << 20, max_values=1000,
                prefix="acme/p1", precision="ns", receive_us=NOW_US, window=window,
            )  # fmt: skip

    def json_(data: bytes) -> None:
        with contextlib.suppress(codec.BodyError):
            codec.parse_body(data, max_items=1000, receive_us=NOW_US, window=window)

    def bulk_(content_type: str) -> Callable[[bytes], None]:
        limits = bulk.BulkLimits(max_rows=10_000, max_inflated_bytes=1 << 24)

        def one(data: bytes) -> None:
            with contextlib.suppress(bulk.BulkError):
                bulk.columns(bulk.read_table(data, content_type, limits), window)

        return one

    return {
        "sparkplug": sparkplug,
        "sparkplug-columns": sparkplug_columns,
        "modbus": modbus,
        "line-protocol": line_protocol_,
        "json": json_,
        "arrow-stream": bulk_(bulk.ARROW_STREAM),
        "arrow-file": bulk_(bulk.ARROW_FILE),
        "parquet": bulk_(bulk.PARQUET),
    }


def main() -> None:
    import atheris  # type: ignore[import-not-found]  # optional: only for these runs

    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    name = sys.argv.pop(1)
    with atheris.instrument_imports():
        targets = _targets()
    if name not in targets:
        raise SystemExit(f"unknown target {name!r}; one of: {', '.join(targets)}")
    atheris.Setup(sys.argv, targets[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
