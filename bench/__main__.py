"""`python -m bench <benchmark> [options]`: parse options and hand off to the benchmark module."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _schema_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=200_000_000, help="rows to seed")
    parser.add_argument("--days", type=int, default=1, help="days the seed spans, ending now")
    parser.add_argument("--path", default=None, help="chDB data path (kept between runs)")
    parser.add_argument("--runs", type=int, default=20, help="warm runs per query")
    parser.add_argument("--cold-runs", type=int, default=5, help="runs after dropping caches")
    parser.add_argument("--chunk-rows", type=int, default=5_000_000, help="rows per INSERT")
    parser.add_argument(
        "--merge-timeout", type=float, default=900, help="seconds to wait for merges to settle"
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON report path")


def _schema(args: argparse.Namespace) -> None:
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    benchmarks = parser.add_subparsers(dest="benchmark", required=True)
    schema = benchmarks.add_parser(
        "schema", help="dashboard queries: rollups vs raw events, cold and warm"
    )
    _schema_options(schema)
    schema.set_defaults(run=_schema)
    ingest = benchmarks.add_parser(
        "ingest", help="Kafka -> consumer -> chDB: events/s, CPU per million, freshness"
    )
    ingest.add_argument("--events", type=int, default=2_000_000, help="events to pre-fill")
    ingest.add_argument("--rate", type=float, default=10_000, help="events/s for freshness")
    ingest.add_argument("--duration", type=float, default=40, help="seconds per freshness run")
    ingest.add_argument("--path", default=None, help="chDB data path (recreated)")
    ingest.add_argument("--out", type=Path, default=None, help="JSON report path")
    count = ingest.add_mutually_exclusive_group()
    count.add_argument(
        "--instructions",
        action="store_true",
        help="only count the hot path's instructions per event (any machine, busy or not)",
    )
    count.add_argument(
        "--no-instructions", action="store_true", help="leave the instruction count out"
    )
    ingest.set_defaults(run=_ingest)
    soak = benchmarks.add_parser(
        "soak", help="adpulse up left running: every process's memory, start against end"
    )
    soak.add_argument("--rate", type=float, default=20_000, help="events/s (10x the default)")
    soak.add_argument("--minutes", type=float, default=30, help="how long to run")
    soak.add_argument("--window", type=float, default=60, help="adpulse up --broker-window")
    soak.add_argument("--warmup", type=float, default=120, help="seconds before the baseline")
    soak.add_argument("--out", type=Path, default=None, help="JSON report path")
    soak.set_defaults(run=_soak)
    cost = benchmarks.add_parser(
        "cost", help="adpulse cost report and its --help, beside baselines from the same run"
    )
    cost.add_argument("--stack", default="prod", help="stack to price")
    cost.add_argument("--runs", type=int, default=5, help="report and stack-check runs")
    cost.add_argument("--help-runs", type=int, default=10, help="--help runs")
    cost.add_argument("--out", type=Path, default=None, help="JSON report path")
    cost.set_defaults(run=_cost)
    # bench.api parses its own options (`python -m bench api --help` shows them).
    benchmarks.add_parser(
        "api", help="the dashboard's request mix against the served API", add_help=False
    )
    args, rest = parser.parse_known_args(argv)
    if args.benchmark == "api":
        from bench.api import main as api_main

        api_main(rest)
        return
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    from bench.schema import NoSamples

    try:
        args.run(args)
    except NoSamples as exc:
        # A figure without samples is no figure: say why, write no report, exit non-zero.
        print(f"error: no samples: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def _cost(args: argparse.Namespace) -> None:
    from bench.cost import main as cost_main

    cost_main(args.stack, args.runs, args.help_runs, args.out)


def _ingest(args: argparse.Namespace) -> None:
    import orjson

    from bench.ingest import DEFAULT_PATH, render, run

    if args.instructions:
        _instructions(args)
        return
    report = run(
        args.events,
        args.rate,
        args.duration,
        args.path or DEFAULT_PATH,
        instructions=not args.no_instructions,
    )
    out = args.out or RESULTS / f"ingest-{datetime.now(UTC):%Y-%m-%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    print(render(report))
    print(f"report: {out}")


def _instructions(args: argparse.Namespace) -> None:
    import orjson

    from bench.instructions import CounterUnavailable, measure, render
    from bench.machine import machine

    try:
        counted = measure()
    except CounterUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    report = {"machine": machine(), "instructions": counted}
    out = args.out or RESULTS / f"ingest-instructions-{datetime.now(UTC):%Y-%m-%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    print(render(counted))
    print(f"report: {out}")


def _soak(args: argparse.Namespace) -> None:
    import orjson

    from bench.soak import render, run

    report = run(args.rate, args.minutes, args.window, args.warmup)
    out = args.out or RESULTS / f"soak-{datetime.now(UTC):%Y-%m-%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    print(render(report))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
