"""`python -m bench schema`: do the rollups make the dashboard fast enough, and by how much?

Seeds one day of events into a chDB data path (kept between runs), then times each dashboard
query against its rollup and against raw events: cold (after dropping ClickHouse's caches) and
warm (repeated). Reports latency percentiles, rows read, the speedup, and whether the rollup
and raw answers agree.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from adpulse.clickhouse.client import ClickHouseClient, QueryError
from adpulse.clickhouse.connection import connect
from adpulse.clickhouse.migrate import Migrator
from adpulse.clickhouse.schema import SchemaOptions
from adpulse.seed import seed
from adpulse.topology import single
from adpulse.traffic import TrafficModel
from bench.queries import QUERIES, BenchQuery

DEFAULT_PATH = "/tmp/adpulse-bench/chdb"
# ClickHouse's own caches. The OS page cache stays warm: dropping it needs root and would
# slow everything else on the machine, so "cold" means cold ClickHouse, warm disk.
CACHES = ("MARK", "UNCOMPRESSED", "QUERY", "PRIMARY INDEX", "PAGE", "MMAP")
TARGET_P95_MS = 100.0
TARGET_SPEEDUP = 20.0


@dataclass(frozen=True)
class Sample:
    ms: float
    rows_read: int
    bytes_read: int
    data: list[Any]


def ensure_seeded(
    client: ClickHouseClient, events: int, days: int, chunk_rows: int
) -> dict[str, Any]:
    """Seed `events` rows ending now, unless the database already holds exactly that many."""
    db = client.database
    exists = client.query(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = 'events'",
        {"db": db},
    )[0][0]
    if exists and client.query(f"SELECT count() FROM {db}.events")[0][0] == events:
        # Later migrations (new projections, rollups) still apply to a kept seed.
        Migrator(client, single(), SchemaOptions(database=db)).migrate()
        return {"skipped": True, "reason": f"{db}.events already holds {events:,} rows"}
    client.command(f"DROP DATABASE IF EXISTS {db} SYNC")
    client.command(f"CREATE DATABASE {db}")
    Migrator(client, single(), SchemaOptions(database=db)).migrate()

    def progress(done: int, total: int, rows: int) -> None:
        print(f"  seed: chunk {done}/{total}, {rows:,} rows", file=sys.stderr, flush=True)

    summary = seed(
        client, TrafficModel(), events, days, datetime.now(UTC), chunk_rows=chunk_rows,
        progress=progress,
    )  # fmt: skip
    return {
        "skipped": False,
        "rows": summary.rows,
        "chunks": summary.chunks,
        "seconds": summary.seconds,
        "rows_per_second": summary.rows_per_second,
    }


def wait_for_merges(client: ClickHouseClient, timeout_s: float) -> float:
    """Let background merges settle so they do not run during the timings; returns seconds."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        # Merges, and mutations such as MATERIALIZE PROJECTION from a later migration.
        running = client.query(
            "SELECT (SELECT count() FROM system.merges WHERE database = {db:String}) + "
            "(SELECT count() FROM system.mutations WHERE database = {db:String} AND NOT is_done)",
            {"db": client.database},
        )[0][0]
        if not running:
            break
        time.sleep(2)
    return round(time.monotonic() - started, 1)


def query_params(client: ClickHouseClient) -> dict[str, str]:
    """The busiest UTC day, the week ending on it, and the last 15 minutes of data."""
    db = client.database
    busiest: date = client.query(
        f"SELECT day FROM {db}.campaign_daily GROUP BY day ORDER BY sum(impressions) DESC LIMIT 1"
    )[0][0].date()
    newest: datetime = client.query(f"SELECT max(minute) FROM {db}.events_per_minute")[0][0]
    start = datetime(busiest.year, busiest.month, busiest.day, tzinfo=UTC)
    return {
        "day": busiest.isoformat(),
        "day_start": f"{start:%Y-%m-%d %H:%M:%S}",
        "day_end": f"{start + timedelta(days=1):%Y-%m-%d %H:%M:%S}",
        "week_start": (busiest - timedelta(days=6)).isoformat(),
        "since": f"{newest - timedelta(minutes=14):%Y-%m-%d %H:%M:%S}",
    }


def drop_caches(session: Any) -> list[str]:
    """Drop every ClickHouse cache this build supports; returns the ones it does not."""
    unsupported = []
    for cache in CACHES:
        try:
            session.query(f"SYSTEM DROP {cache} CACHE")
        except Exception:  # noqa: BLE001 - an older engine lacks some caches; note and go on
            unsupported.append(cache)
    return unsupported


def run_once(session: Any, sql: str, params: dict[str, str]) -> Sample:
    began = time.perf_counter()
    result = session.query(sql, "JSONCompact", params=params)
    ms = (time.perf_counter() - began) * 1000
    data = orjson.loads(result.bytes())["data"]
    # rows_read() counts result rows; storage_* count what was read from the tables.
    return Sample(ms, result.storage_rows_read(), result.storage_bytes_read(), data)


class NoSamples(Exception):
    """A figure has nothing to be computed from: an error with its reason, never a 0."""


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; NoSamples when there are no values."""
    if not values:
        raise NoSamples(f"P{p:g} of no samples")
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 2)


def _stats(samples: list[Sample]) -> dict[str, float]:
    ms = [s.ms for s in samples]
    return {"p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99)}


def _normalise(rows: list[Any]) -> list[list[str]]:
    # toStartOfHour over DateTime64 prints milliseconds; the rollups hold DateTime.
    return [[str(v).removesuffix(".000") for v in row] for row in rows]


def measure(
    session: Any, query: BenchQuery, db: str, params: dict[str, str], runs: int, cold_runs: int
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": query.name, "question": query.question}
    answers = {}
    for source in ("rollup", "raw"):
        sql = getattr(query, source).replace("{db}", db)
        cold = []
        for _ in range(cold_runs):
            drop_caches(session)
            cold.append(run_once(session, sql, params))
        run_once(session, sql, params)  # warm-up, not counted
        warm = [run_once(session, sql, params) for _ in range(runs)]
        answers[source] = _normalise(warm[-1].data)
        out[source] = {
            "warm_ms": _stats(warm),
            "cold_ms": _stats(cold),
            "rows_read": warm[-1].rows_read,
            "bytes_read": warm[-1].bytes_read,
            "result_rows": len(warm[-1].data),
        }
    out["speedup_p50"] = round(out["raw"]["warm_ms"]["p50"] / out["rollup"]["warm_ms"]["p50"], 1)
    out["speedup_p95"] = round(out["raw"]["warm_ms"]["p95"] / out["rollup"]["warm_ms"]["p95"], 1)
    out["answers_match"] = answers["rollup"] == answers["raw"]
    return out


def table_facts(client: ClickHouseClient) -> dict[str, dict[str, int]]:
    rows = client.query(
        "SELECT table, sum(rows), count(), sum(bytes_on_disk) FROM system.parts "
        "WHERE database = {db:String} AND active GROUP BY table ORDER BY table",
        {"db": client.database},
    )
    return {t: {"rows": r, "parts": p, "bytes_on_disk": b} for t, r, p, b in rows}


def run(
    events: int, days: int, path: str, runs: int, cold_runs: int, chunk_rows: int,
    merge_timeout_s: float,
) -> dict[str, Any]:  # fmt: skip
    """Seed if needed, time every query, and return the report."""
    from importlib.metadata import version

    import chdb

    client = connect(f"chdb://{path}")
    try:
        seeding = ensure_seeded(client, events, days, chunk_rows)
        merge_wait = wait_for_merges(client, merge_timeout_s)
        params = query_params(client)
        # The ClickHouseClient interface hides result statistics; a chDB session has them.
        with client._pool.session() as session:  # type: ignore[attr-defined]
            unsupported = drop_caches(session)
            results = [
                measure(session, q, client.database, params, runs, cold_runs) for q in QUERIES
            ]
        tables = table_facts(client)
    except QueryError as exc:
        raise SystemExit(f"bench schema: {exc}") from None
    finally:
        client.close()
    worst_p95 = max(r["rollup"]["warm_ms"]["p95"] for r in results)
    least_speedup = min(r["speedup_p50"] for r in results)
    return {
        "benchmark": "schema",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "engine": f"chDB {version('chdb')} (ClickHouse {chdb.__version__})",
        "cpus": os.cpu_count(),
        "events": events,
        "days": days,
        "path": path,
        "runs": runs,
        "cold_runs": cold_runs,
        "caches_not_droppable": unsupported,
        "seed": seeding,
        "merge_wait_s": merge_wait,
        "tables": tables,
        "params": params,
        "queries": results,
        "targets": {
            "rollup_warm_p95_ms_max": TARGET_P95_MS,
            "speedup_min": TARGET_SPEEDUP,
            "worst_rollup_warm_p95_ms": worst_p95,
            "least_speedup_p50": least_speedup,
            "met": worst_p95 <= TARGET_P95_MS and least_speedup >= TARGET_SPEEDUP,
        },
    }


def render(report: dict[str, Any]) -> str:
    """A plain table for the terminal."""
    head = (
        f"{'query':<18} {'source':<7} {'warm p50/p95/p99 ms':>24} {'cold p50/p95/p99 ms':>24} "
        f"{'rows read':>13} {'speedup':>8}"
    )
    lines = [head, "-" * len(head)]
    for q in report["queries"]:
        for source in ("rollup", "raw"):
            r = q[source]
            warm, cold = r["warm_ms"], r["cold_ms"]
            speedup = f"{q['speedup_p50']}x" if source == "rollup" else ""
            lines.append(
                f"{q['name'] if source == 'rollup' else '':<18} {source:<7} "
                f"{warm['p50']:>8.1f}/{warm['p95']:>7.1f}/{warm['p99']:>7.1f} "
                f"{cold['p50']:>8.1f}/{cold['p95']:>7.1f}/{cold['p99']:>7.1f} "
                f"{r['rows_read']:>13,} {speedup:>8}"
            )
        if not q["answers_match"]:
            lines.append(f"{'':<18} !! rollup and raw answers differ")
    t = report["targets"]
    lines.append(
        f"targets: rollup warm P95 <= {t['rollup_warm_p95_ms_max']:.0f} ms (worst "
        f"{t['worst_rollup_warm_p95_ms']}), speedup >= {t['speedup_min']:.0f}x (least "
        f"{t['least_speedup_p50']}x): {'met' if t['met'] else 'MISSED'}"
    )
    return "\n".join(lines)
