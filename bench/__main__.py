"""`python -m bench <benchmark> [options]`: parse options and hand off to the benchmark module."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    benchmarks = parser.add_subparsers(dest="benchmark", required=True)
    schema = benchmarks.add_parser(
        "schema", help="dashboard queries: rollups vs raw events, cold and warm"
    )
    schema.add_argument("--events", type=int, default=200_000_000, help="rows to seed")
    schema.add_argument("--days", type=int, default=1, help="days the seed spans, ending now")
    schema.add_argument("--path", default=None, help="chDB data path (kept between runs)")
    schema.add_argument("--runs", type=int, default=20, help="warm runs per query")
    schema.add_argument("--cold-runs", type=int, default=5, help="runs after dropping caches")
    schema.add_argument("--chunk-rows", type=int, default=5_000_000, help="rows per INSERT")
    schema.add_argument(
        "--merge-timeout", type=float, default=900, help="seconds to wait for merges to settle"
    )
    schema.add_argument("--out", type=Path, default=None, help="JSON report path")
    args = parser.parse_args(argv)

    # Imported here so `--help` answers without loading ClickHouse.
    import orjson

    from bench.schema import DEFAULT_PATH, render, run

    report = run(
        events=args.events,
        days=args.days,
        path=args.path or DEFAULT_PATH,
        runs=args.runs,
        cold_runs=args.cold_runs,
        chunk_rows=args.chunk_rows,
        merge_timeout_s=args.merge_timeout,
    )
    out = args.out or RESULTS / f"schema-{datetime.now(UTC):%Y-%m-%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    print(render(report))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
