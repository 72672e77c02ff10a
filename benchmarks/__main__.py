"""Run every benchmark; each prints JSON lines with its figure, baseline and ratio.

    python -m benchmarks            # full sizes (several minutes)
    python -m benchmarks --quick    # small sizes, a smoke run
    python -m benchmarks --only historian

Progress goes to stderr, results to stdout, so `> results.jsonl` keeps only the figures.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time

SUITES = {
    "alarm_detection": "benchmarks.bench_alarm_detection",
    "alarm_eval": "benchmarks.bench_alarm_eval",
    "bus_nats": "benchmarks.bench_bus_nats",
    "genealogy": "benchmarks.bench_genealogy",
    "historian": "benchmarks.bench_historian",
    "ingest_http": "benchmarks.bench_ingest_http",
    "loop_stall": "benchmarks.bench_loop_stall",
    "modbus": "benchmarks.bench_modbus",
    "mrp": "benchmarks.bench_mrp",
    "oee": "benchmarks.bench_oee",
    "opcua": "benchmarks.bench_opcua",
    "peers": "benchmarks.bench_peers",
    "sparkplug": "benchmarks.bench_sparkplug",
}


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", choices=sorted(SUITES), action="append", help="run only these")
    args = parser.parse_args()
    failed = 0
    for name in args.only or list(SUITES):
        started = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(SUITES[name])
            for row in module.run(quick=args.quick):
                print(json.dumps(row), flush=True)
        except Exception as err:  # one broken suite must not hide the others' figures
            failed += 1
            print(f"[bench] {name} failed: {type(err).__name__}: {err}", file=sys.stderr)
        print(f"[bench] {name} done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
