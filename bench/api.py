"""`python -m bench api`: latency and throughput of the dashboard's request mix on the API.

Reuses the `bench schema` seed (one day of events in a chDB path), adds the API's breakdown
rollups to it, serves the API from a uvicorn subprocess (the only process that opens the
path) with API keys and Redis, and drives it (bench/load.mjs by default, see `drive`): first
one question of each kind right after the start (cold: nothing in memory), then at each
concurrency questions never asked before (answer-cache misses), then a warmed set asked again
(hits). Latencies are split by the `X-Cache` header the API sets, so a miss is never counted
as a hit. `--hot-hours 0` measures the API without the rollups it holds in memory.

Beside every figure, from the same run: the API process's CPU over the requests it served
(CPU-ms per miss and per hit), and a minimal app on the same server stack answering a fixed
body of a hit's size with the same load generator (`bench.api_baseline`): hits/s are reported
as a multiple of its requests/s, the ratio that compares between machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adpulse import names
from bench.api_baseline import TARGET_HITS_VS_BASELINE, TARGET_MISS_VS_HIT_CPU, cpu_per_request
from bench.machine import cpu_seconds, machine

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGETS_MS = {"miss_p95_at_32": 150.0, "hit_p95_at_32": 10.0}
# Views added after the seed was made (migration 0003): their tables are filled from events.
BACKFILLED_VIEWS = (names.BREAKDOWN_HOURLY_VIEW, names.PUBLISHER_HOURLY_VIEW)


# --- preparation, in a child process: only one process may open a chDB path -----------------


def prepare(path: str, events: int, days: int, chunk_rows: int) -> dict[str, Any]:
    """Seed like `bench schema` if needed, add and backfill the API's rollups, settle merges."""
    from adpulse.clickhouse.connection import connect
    from adpulse.clickhouse.migrate import Migrator
    from adpulse.clickhouse.schema import SchemaOptions
    from adpulse.topology import single
    from bench.schema import ensure_seeded, wait_for_merges

    client = connect(f"chdb://{path}")
    try:
        seeding = ensure_seeded(client, events, days, chunk_rows)
        migrator = Migrator(client, single(), SchemaOptions(database=client.database))
        applied = migrator.migrate()
        backfilled = backfill(client, migrator.plan())
        mutation_wait = wait_for_mutations(client, 1800)
        merge_wait = wait_for_merges(client, 900)
        [(newest,)] = client.query(f"SELECT max(event_time) FROM {client.database}.events")
    finally:
        client.close()
    return {
        "seed": seeding,
        "migrations_applied": applied,
        "backfilled": backfilled,
        "mutation_wait_s": mutation_wait,
        "merge_wait_s": merge_wait,
        "newest_event": newest.isoformat(),
    }


def backfill(client: Any, planned: list[Any]) -> dict[str, float]:
    """Fill rollups created after the seed from the events table, with their views' SELECT.

    A rollup fills only from inserts made after it exists; a seed made before migration 0003
    has none of its rows. Skipped when the rollup already holds rows (nothing to double).
    """
    db = client.database
    done = {}
    for statement in (s for p in planned for s in p.statements):
        head, sep, select = statement.partition("\nAS SELECT")
        view = re.search(rf"VIEW IF NOT EXISTS {db}\.(\w+)", head) if sep else None
        target = re.search(r"\bTO (\S+)", head)
        if view is None or target is None or view.group(1) not in BACKFILLED_VIEWS:
            continue
        target_table = target.group(1)
        if client.query(f"SELECT count() FROM {target_table}")[0][0]:
            continue
        started = time.monotonic()
        print(f"  backfilling {target_table} from events", file=sys.stderr, flush=True)
        client.command(f"INSERT INTO {target_table} SELECT{select}")
        done[target_table] = round(time.monotonic() - started, 1)
    return done


def wait_for_mutations(client: Any, timeout_s: float) -> float:
    """Let MATERIALIZE PROJECTION (migrations 0004, 0005) finish on the seeded parts."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        pending = client.query(
            "SELECT count() FROM system.mutations WHERE database = {db:String} AND NOT is_done",
            {"db": client.database},
        )[0][0]
        if not pending:
            break
        time.sleep(2)
    return round(time.monotonic() - started, 1)


def serve_for_bench(
    path: str, port: int, redis_url: str, prefix: str, key_file: str, hot_hours: int = 72
) -> None:
    """The API as deployed (keys on), over the seeded path; names the generator's campaigns."""
    from adpulse.metadata import api_keys
    from adpulse.metadata.campaigns import ensure_demo_campaigns
    from adpulse.metadata.store import open_store
    from adpulse.settings import load_settings
    from adpulse.traffic import TrafficModel, campaigns
    from api.server import build_server

    settings = load_settings(
        clickhouse_url=f"chdb://{path}",
        redis_url=redis_url or None,
        postgres_url=None,
        cache_prefix=prefix,
        log_level="WARNING",
        api_hot_hours=hot_hours,
    )
    store = open_store(settings)  # SQLite under this process's working directory
    Path(key_file).write_text(api_keys.create(store, "bench").key)
    owners = campaigns(TrafficModel()).advertiser_id
    ensure_demo_campaigns(store, [(i + 1, a) for i, a in enumerate(owners)])
    build_server(settings, "127.0.0.1", port, auth_required=True, store=store).run()


def _child(call: str, cwd: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env = {k: v for k, v in env.items() if not k.startswith("ADPULSE_")}
    return subprocess.Popen([sys.executable, "-c", call], cwd=cwd, env=env)


# --- the request mix ---------------------------------------------------------------------------

KINDS = (
    "summary", "summary_campaign", "timeseries", "timeseries_campaign", "campaigns",
    "breakdown_country", "breakdown_device", "live", "freshness",
)  # fmt: skip


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def request_path(kind: str, end: datetime, campaign: int) -> str:
    """One dashboard request: the last 24 hours ending at `end`, for all or one campaign."""
    window = f"from={_iso(end - timedelta(hours=24))}&to={_iso(end)}"
    one = f"campaign_id={campaign}"
    return {
        "summary": f"/api/v1/summary?{window}&compare=previous",
        "summary_campaign": f"/api/v1/summary?{window}&compare=previous&{one}",
        "timeseries": f"/api/v1/timeseries?{window}&granularity=hour",
        "timeseries_campaign": f"/api/v1/timeseries?{window}&granularity=hour&{one}",
        "campaigns": f"/api/v1/campaigns?{window}&sort=spend_micros&order=desc&limit=50",
        "breakdown_country": f"/api/v1/breakdown?{window}&by=country&{one}",
        "breakdown_device": f"/api/v1/breakdown?{window}&by=device_type&{one}",
        "live": "/api/v1/live",
        "freshness": "/api/v1/freshness",
    }[kind]


def fresh_questions(anchor: datetime, count: int, seed: int) -> list[str]:
    """Questions no one asked yet: every one ends a different minute before `anchor` (breakdowns,
    kept per hour, differ by campaign instead), as many dashboards opened at different times."""
    rng = random.Random(seed)
    order = rng.sample(range(1, 2001), 2000)
    return [
        request_path(KINDS[i % len(KINDS)], anchor - timedelta(minutes=i), order[i % 2000])
        for i in range(count)
    ]


@dataclass(frozen=True)
class Sample:
    kind: str
    status: int
    cache: str
    ms: float


def _kind(path: str) -> str:
    return path.split("?")[0].rsplit("/", 1)[-1]


async def drive(
    base: str, key: str, paths: list[str], concurrency: int, client: str = "node"
) -> tuple[list[Sample], float]:
    """Ask `paths` with `concurrency` requests in flight; returns samples and wall seconds.

    `node` (bench/load.mjs) is the default: a raw-socket keep-alive client that spends a few
    microseconds per request. The Python clients share the machine's two cores with the API
    and measure themselves at concurrency 32: `raw` (asyncio streams) spends ~0.3 ms of CPU
    per request, and httpx managed 144 requests/s against a route returning a constant.
    """
    if client == "node":
        return _drive_node(base, key, paths, concurrency)
    if client == "raw":
        return await _drive_raw(base, key, paths, concurrency)
    import httpx

    queue: asyncio.Queue[str] = asyncio.Queue()
    for path in paths:
        queue.put_nowait(path)
    samples: list[Sample] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as http:

        async def worker() -> None:
            while not queue.empty():
                path = queue.get_nowait()
                began = time.perf_counter()
                response = await http.get(path)
                ms = (time.perf_counter() - began) * 1000
                cache = response.headers.get("x-cache", "-")
                samples.append(Sample(_kind(path), response.status_code, cache, ms))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples, time.perf_counter() - started


async def _drive_raw(
    base: str, key: str, paths: list[str], concurrency: int
) -> tuple[list[Sample], float]:
    host, port = base.removeprefix("http://").split(":")
    pending = list(reversed(paths))
    samples: list[Sample] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while pending:
                path = pending.pop()
                began = time.perf_counter()
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
                    f"Authorization: Bearer {key}\r\n\r\n".encode()
                )
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                fields = dict(line.lower().split(": ", 1) for line in head[1:] if ": " in line)
                await reader.readexactly(int(fields["content-length"]))
                ms = (time.perf_counter() - began) * 1000
                status = int(head[0].split()[1])
                samples.append(Sample(_kind(path), status, fields.get("x-cache", "-").upper(), ms))
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples, time.perf_counter() - started


def _drive_node(
    base: str, key: str, paths: list[str], concurrency: int
) -> tuple[list[Sample], float]:
    host, port = base.removeprefix("http://").split(":")
    request = {"host": host, "port": int(port), "key": key, "paths": paths,
               "concurrency": concurrency}  # fmt: skip
    done = subprocess.run(
        ["node", str(ROOT / "bench" / "load.mjs")],
        input=json.dumps(request).encode(),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench api: the load generator failed: {done.stderr.decode()[-2000:]}")
    result = json.loads(done.stdout)
    samples = [
        Sample(_kind(paths[i]), status, cache, ms) for i, status, cache, ms in result["samples"]
    ]
    return samples, float(result["seconds"])


def _percentiles(values: list[float]) -> dict[str, float]:
    from bench.schema import percentile

    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
    }


def _load(samples: list[Sample], seconds: float, load: float) -> dict[str, Any]:
    """How much was asked and answered, the same for the API's phases and the minimal app."""
    return {
        "requests": len(samples),
        "seconds": round(seconds, 2),
        "requests_per_s": round(len(samples) / seconds, 1),
        "load_average_1m": round(load, 2),
        "statuses": dict(Counter(str(s.status) for s in samples)),
    }


def summarise(
    phase: str, concurrency: int, samples: list[Sample], seconds: float, load: float
) -> dict[str, Any]:
    """Latency split by X-Cache; `load` is the machine's 1-minute load average at the start."""
    by_kind: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for s in samples:
        by_kind[s.kind][s.cache].append(s.ms)
    return {
        "phase": phase,
        "concurrency": concurrency,
        **_load(samples, seconds, load),
        "miss_ms": _percentiles([s.ms for s in samples if s.cache == "MISS"]),
        "hit_ms": _percentiles([s.ms for s in samples if s.cache == "HIT"]),
        "by_endpoint": {
            kind: {cache: _percentiles(ms) for cache, ms in caches.items()}
            for kind, caches in sorted(by_kind.items())
        },
    }


# --- orchestration -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(base: str, server: subprocess.Popen[bytes], timeout_s: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"bench api: the API exited with {server.returncode} while starting")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"bench api: the API at {base} was not ready within {timeout_s:g} s")


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = tempfile.mkdtemp(prefix="adpulse-bench-api-")
    facts_file, key_file = Path(workdir, "prepare.json"), Path(workdir, "key")
    prep = _child(
        "import json, bench.api as b; "
        f"json.dump(b.prepare({args.path!r}, {args.events}, {args.days}, {args.chunk_rows}), "
        f"open({str(facts_file)!r}, 'w'))",
        workdir,
    )
    if prep.wait() != 0:
        raise SystemExit("bench api: preparing the seed failed (see above)")
    facts = json.loads(facts_file.read_text())
    anchor = datetime.fromisoformat(facts["newest_event"]).replace(second=0, microsecond=0)
    port, prefix = _free_port(), f"adpulse-bench:{secrets.token_hex(4)}"
    server = _child(
        f"import bench.api as b; b.serve_for_bench({args.path!r}, {port}, {args.redis_url!r}, "
        f"{prefix!r}, {str(key_file)!r}, {args.hot_hours})",
        workdir,
    )
    base = f"http://127.0.0.1:{port}"
    phases = []
    hit_sizes: list[int] = []
    try:
        _wait_ready(base, server)
        key = key_file.read_text()
        # The first question of each kind after a start: nothing in memory yet (the rollup
        # blocks of api/hot/, the tables' marks, the code paths).
        cold = fresh_questions(anchor, len(KINDS), seed=0)
        samples, seconds = asyncio.run(drive(base, key, cold, 1, args.client))
        phases.append(summarise("cold", 1, samples, seconds, os.getloadavg()[0]))
        # Unmeasured: the rest of the warm-up.
        rest = fresh_questions(anchor, 30, seed=0)[len(KINDS) :]
        asyncio.run(drive(base, key, rest, 1, args.client))
        asked = 30
        for concurrency in args.concurrency:
            count = args.miss_requests * max(1, concurrency // 8)
            paths = fresh_questions(anchor - timedelta(minutes=asked), count, seed=concurrency)
            asked += count
            load = os.getloadavg()[0]
            cpu0 = cpu_seconds(server.pid)
            samples, seconds = asyncio.run(drive(base, key, paths, concurrency, args.client))
            phases.append(summarise("misses", concurrency, samples, seconds, load))
            phases[-1]["server_cpu_ms"] = round((cpu_seconds(server.pid) - cpu0) * 1000, 1)
            pool = fresh_questions(anchor - timedelta(minutes=asked), 45, seed=concurrency + 1)
            asked += 45
            asyncio.run(drive(base, key, pool, 4, args.client))  # warm the pool into the cache
            hit_sizes += _body_sizes(base, key, pool)
            rng = random.Random(concurrency)
            repeat = [rng.choice(pool) for _ in range(args.hit_requests)]
            load = os.getloadavg()[0]
            cpu0 = cpu_seconds(server.pid)
            samples, seconds = asyncio.run(drive(base, key, repeat, concurrency, args.client))
            phases.append(summarise("hits", concurrency, samples, seconds, load))
            phases[-1]["server_cpu_ms"] = round((cpu_seconds(server.pid) - cpu0) * 1000, 1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    cpu_per_request(phases)
    baseline = run_baseline(args, workdir, sorted(hit_sizes)[len(hit_sizes) // 2])
    return _report(args, facts, phases, baseline)


def _body_sizes(base: str, key: str, paths: list[str]) -> list[int]:
    """The size of each answer's body (asked again: these are cache hits now)."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        return [len(http.get(path).content) for path in paths]


def run_baseline(args: argparse.Namespace, workdir: str, size: int) -> list[dict[str, Any]]:
    """The minimal app (`bench.api_baseline`) at each concurrency: `--hit-requests` requests."""
    port = _free_port()
    server = _child(f"import bench.api_baseline as b; b.serve_fixed({port}, {size})", workdir)
    base = f"http://127.0.0.1:{port}"
    levels = []
    try:
        _wait_ready(base, server)
        paths = ["/api/v1/fixed"] * args.hit_requests
        asyncio.run(drive(base, "-", paths[:50], 4, args.client))  # as the hits were warmed
        for concurrency in args.concurrency:
            load = os.getloadavg()[0]
            cpu0 = cpu_seconds(server.pid)
            samples, seconds = asyncio.run(drive(base, "-", paths, concurrency, args.client))
            cpu_ms = (cpu_seconds(server.pid) - cpu0) * 1000
            levels.append({
                "concurrency": concurrency,
                "body_bytes": size,
                **_load(samples, seconds, load),
                "ms": _percentiles([s.ms for s in samples]),
                "server_cpu_ms": round(cpu_ms, 1),
                "cpu_ms_per_request": round(cpu_ms / len(samples), 3) if samples else None,
            })  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
    return levels


def _report(
    args: argparse.Namespace,
    facts: dict[str, Any],
    phases: list[Any],
    baseline: list[dict[str, Any]],
) -> dict[str, Any]:
    from importlib.metadata import version

    for level in baseline:
        for p in phases:
            if p["phase"] == "hits" and p["concurrency"] == level["concurrency"]:
                p["hits_vs_baseline"] = round(p["requests_per_s"] / level["requests_per_s"], 2)
    at_32 = {p["phase"]: p for p in phases if p["concurrency"] == 32}
    miss_p95 = at_32.get("misses", {}).get("miss_ms", {}).get("p95")
    hit_p95 = at_32.get("hits", {}).get("hit_ms", {}).get("p95")
    hits_vs_baseline = at_32.get("hits", {}).get("hits_vs_baseline")
    miss_vs_hit_cpu = at_32.get("misses", {}).get("miss_vs_hit_cpu")
    return {
        "benchmark": "api",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "engine": f"chDB {version('chdb')}",
        "cpus": os.cpu_count(),
        "path": args.path,
        "events": args.events,
        "cache": "redis" if args.redis_url else "in-process",
        "auth": "API key (SQLite store)",
        "client": args.client,
        "api_hot_hours": args.hot_hours,
        "mix": list(KINDS),
        "prepare": facts,
        "phases": phases,
        "baseline": baseline,
        "targets": {
            **TARGETS_MS,
            "miss_p95_at_32_ms": miss_p95,
            "hit_p95_at_32_ms": hit_p95,
            "met": miss_p95 is not None
            and hit_p95 is not None
            and miss_p95 <= TARGETS_MS["miss_p95_at_32"]
            and hit_p95 <= TARGETS_MS["hit_p95_at_32"],
        },
        # The ratios: what is comparable between machines.
        "ratio_targets": {
            "hits_vs_baseline_at_32": hits_vs_baseline,
            "hits_vs_baseline_min": TARGET_HITS_VS_BASELINE,
            "miss_vs_hit_cpu_at_32": miss_vs_hit_cpu,
            "miss_vs_hit_cpu_max": TARGET_MISS_VS_HIT_CPU,
            "met": hits_vs_baseline is not None
            and miss_vs_hit_cpu is not None
            and hits_vs_baseline >= TARGET_HITS_VS_BASELINE
            and miss_vs_hit_cpu <= TARGET_MISS_VS_HIT_CPU,
        },
    }


def render(report: dict[str, Any]) -> str:
    head = (
        f"{'phase':<7} {'conc':>4} {'req':>6} {'req/s':>8}  "
        f"{'MISS p50/p95/p99 ms':>32}  {'HIT p50/p95/p99 ms':>32}  {'load':>5}"
    )
    lines = [head, "-" * len(head)]
    for p in report["phases"]:
        cells = []
        for key in ("miss_ms", "hit_ms"):
            s = p[key]
            cells.append(
                f"{s['p50']:.1f}/{s['p95']:.1f}/{s['p99']:.1f} (n={s['count']})"
                if s["count"]
                else "-"
            )
        lines.append(
            f"{p['phase']:<7} {p['concurrency']:>4} {p['requests']:>6} {p['requests_per_s']:>8}  "
            f"{cells[0]:>32}  {cells[1]:>32}  {p['load_average_1m']:>5}"
        )
    for b in report["baseline"]:
        lines.append(
            f"{'minimal':<7} {b['concurrency']:>4} {b['requests']:>6} {b['requests_per_s']:>8}  "
            f"fixed {b['body_bytes']:,}-byte body, {b['cpu_ms_per_request']} CPU-ms a request"
        )
    for p in report["phases"]:
        if "hits_vs_baseline" in p:
            miss: dict[str, Any] = next(
                (m for m in report["phases"]
                 if m["phase"] == "misses" and m["concurrency"] == p["concurrency"]),
                {},
            )  # fmt: skip
            lines.append(
                f"concurrency {p['concurrency']}: hits/s {p['hits_vs_baseline']}x the minimal "
                f"app's; server CPU-ms per hit {p.get('cpu_ms_per_hit')}, per miss "
                f"{miss.get('cpu_ms_per_miss')} ({miss.get('miss_vs_hit_cpu')}x)"
            )
    t, r = report["targets"], report["ratio_targets"]
    lines.append(
        f"targets at concurrency 32: miss P95 <= {t['miss_p95_at_32']:g} ms (got "
        f"{t['miss_p95_at_32_ms']}), hit P95 <= {t['hit_p95_at_32']:g} ms (got "
        f"{t['hit_p95_at_32_ms']}): {'met' if t['met'] else 'MISSED'}"
    )
    lines.append(
        f"ratio targets at concurrency 32: hits >= {r['hits_vs_baseline_min']:g}x the minimal "
        f"app (got {r['hits_vs_baseline_at_32']}), miss CPU <= {r['miss_vs_hit_cpu_max']:g}x a "
        f"hit's (got {r['miss_vs_hit_cpu_at_32']}): {'met' if r['met'] else 'MISSED'}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from bench.schema import DEFAULT_PATH

    parser = argparse.ArgumentParser(prog="python -m bench api", description=__doc__)
    parser.add_argument("--path", default=DEFAULT_PATH, help="chDB data path of the seed")
    parser.add_argument("--events", type=int, default=200_000_000, help="rows the seed holds")
    parser.add_argument("--days", type=int, default=1, help="days the seed spans, ending now")
    parser.add_argument("--chunk-rows", type=int, default=5_000_000, help="rows per seed INSERT")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 32], help="requests in flight"
    )
    parser.add_argument(
        "--miss-requests", type=int, default=150, help="new questions per level (x conc/8)"
    )
    parser.add_argument("--hit-requests", type=int, default=20000, help="repeated questions")
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/0", help="'' for the in-process cache"
    )
    parser.add_argument(
        "--client",
        choices=("node", "raw", "httpx"),
        default="node",
        help="load generator (see drive)",
    )
    parser.add_argument(
        "--hot-hours",
        type=int,
        default=72,
        help="the API's api_hot_hours (0: every answer reads ClickHouse, as before api/hot/)",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON report path")
    args = parser.parse_args(argv)
    report = run(args)
    out = args.out or RESULTS / f"api-{datetime.now(UTC):%Y-%m-%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(render(report))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
