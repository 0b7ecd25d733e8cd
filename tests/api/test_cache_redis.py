"""The answer cache on real Redis, through the API: hits, expiry, normalised keys,
single-flight across processes, short TTLs for live data, and Redis dying mid-run."""

from __future__ import annotations

import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio
import httpx
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.cache import KEY_VERSION
from tests.api.conftest import REDIS_URL, AppFactory, Seeded
from tests.api.support import RecordingClient
from tests.support.clickhouse_server import free_port

F, T = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"


def summary(**params: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in ({"from": F, "to": T} | params).items())
    return f"/api/v1/summary?{query}"


@asynccontextmanager
async def asgi(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


@pytest.fixture
def cached(make_app: AppFactory, redis_prefix: str) -> Iterator[TestClient]:
    with TestClient(make_app(redis_url=REDIS_URL, cache_prefix=redis_prefix)) as client:
        yield client


def test_hit_after_miss_answers_the_same_without_clickhouse(
    cached: TestClient, recording: RecordingClient
) -> None:
    first, second = cached.get(summary()), cached.get(summary())
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert first.content == second.content
    assert len(recording.data_queries()) == 1


def test_entries_expire(make_app: AppFactory, redis_prefix: str) -> None:
    app = make_app(redis_url=REDIS_URL, cache_prefix=redis_prefix, cache_ttl_s=0.5)
    with TestClient(app) as http:
        assert http.get(summary()).headers["x-cache"] == "MISS"
        assert http.get(summary()).headers["x-cache"] == "HIT"
        time.sleep(0.7)
        assert http.get(summary()).headers["x-cache"] == "MISS"


def test_keys_are_normalised(cached: TestClient, recording: RecordingClient) -> None:
    assert cached.get(summary()).headers["x-cache"] == "MISS"
    same = [
        "/api/v1/summary?to=2026-01-02T00:00:00Z&from=2026-01-01T00:00:00Z",  # order
        "/api/v1/summary?from=2026-01-01T00:00:30Z&to=2026-01-01T23:59:01Z",  # same minutes
        "/api/v1/summary?from=2026-01-01T01:00:00%2B01:00&to=2026-01-02T00:00:00Z",  # offset
    ]
    assert [cached.get(path).headers["x-cache"] for path in same] == ["HIT"] * 3
    assert cached.get(summary(campaign_id=3)).headers["x-cache"] == "MISS"
    assert len(recording.data_queries()) == 2


def test_live_answers_keep_the_5_second_promise(cached: TestClient, redis_prefix: str) -> None:
    cached.get(summary())
    cached.get("/api/v1/live")
    cached.get("/api/v1/freshness")
    conn = redis.Redis.from_url(REDIS_URL)
    ttls = {
        key.decode().split(f":{KEY_VERSION}:")[1].split("?")[0]: conn.pttl(key)
        for key in conn.scan_iter(match=f"{redis_prefix}:*")
    }
    conn.close()
    assert 0 < ttls["live"] <= 2_000 and 0 < ttls["freshness"] <= 2_000
    assert 55_000 < ttls["summary"] <= 60_000


@pytest.mark.anyio
async def test_50_concurrent_misses_in_two_processes_make_one_query(
    make_app: AppFactory, seeded: Seeded, redis_prefix: str
) -> None:
    slow = RecordingClient(seeded.client, delay_s=0.3)
    apps = [make_app(redis_url=REDIS_URL, cache_prefix=redis_prefix, client=slow) for _ in "ab"]
    statuses: list[tuple[int, str]] = []
    async with asgi(apps[0]) as a, asgi(apps[1]) as b:

        async def ask(client: httpx.AsyncClient) -> None:
            response = await client.get(summary(campaign_id=5))
            statuses.append((response.status_code, response.headers["x-cache"]))

        async with anyio.create_task_group() as group:
            for i in range(50):
                group.start_soon(ask, a if i % 2 else b)
        errors = [
            line for line in (await a.get("/metrics")).text.splitlines() if "cache_err" in line
        ]
    assert len(slow.data_queries()) == 1, errors
    assert [s for s, _ in statuses] == [200] * 50


@contextmanager
def own_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A private redis-server this test may kill (never the shared one)."""
    port = free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    proc = subprocess.Popen([*args, "--daemonize", "no"], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    conn = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            conn.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    conn.close()
    try:
        yield url, proc
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.anyio
async def test_redis_killed_mid_run_fails_no_request(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with own_redis() as (url, proc):
        app = make_app(redis_url=url)
        answers: dict[str, set[bytes]] = {}
        failures: list[tuple[str, int]] = []
        done = 0
        async with asgi(app) as client:

            async def ask(path: str) -> None:
                nonlocal done
                response = await client.get(path)
                if response.status_code != 200:
                    failures.append((path, response.status_code))
                answers.setdefault(path, set()).add(response.content)
                done += 1
                if done == 100:
                    proc.kill()  # mid-run, with requests in flight

            limiter = anyio.CapacityLimiter(10)

            async def limited(path: str) -> None:
                async with limiter:
                    await ask(path)

            # 150 questions: those asked only after the kill need Redis (the ones before
            # it are also kept as local copies, which answer without it).
            async with anyio.create_task_group() as group:
                for i in range(300):
                    group.start_soon(limited, summary(campaign_id=i % 150))
            metrics = (await client.get("/metrics")).text
            ready = (await client.get("/readyz")).json()
        assert failures == []
        assert done == 300
        assert all(len(bodies) == 1 for bodies in answers.values()), "answers changed"
        assert "adpulse_api_cache_errors_total" in metrics
        errors = [
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("adpulse_api_cache_errors_total")
        ]
        assert sum(errors) >= 1
        assert ready["status"] == "degraded" and ready["cache"].startswith("unreachable")
        port = url.rsplit(":", 1)[1].split("/")[0]
        warnings = [
            r.getMessage() for r in caplog.records if "answering from ClickHouse" in r.getMessage()
        ]
        assert len(warnings) == 1 and f"127.0.0.1:{port}" in warnings[0]


def test_without_redis_an_in_process_cache_answers(make_app: AppFactory) -> None:
    with TestClient(make_app(redis_url=None)) as http:
        assert [http.get(summary()).headers["x-cache"] for _ in range(2)] == ["MISS", "HIT"]
        assert http.get("/readyz").json() == {"status": "ready", "clickhouse": "ok", "cache": "ok"}


def _calls(conn: redis.Redis) -> dict[str, int]:
    stats = conn.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def test_a_miss_costs_three_round_trips_and_a_hit_none(make_app: AppFactory) -> None:
    """Look up; take the fill lock and look again; store and release. A repeat is answered
    from this process's own copy."""
    with own_redis() as (url, _proc), TestClient(make_app(redis_url=url)) as http:
        conn = redis.Redis.from_url(url)
        assert http.get(summary(campaign_id=7)).headers["x-cache"] == "MISS"  # scripts loaded
        before = _calls(conn)
        assert http.get(summary(campaign_id=8)).headers["x-cache"] == "MISS"
        after = _calls(conn)
        assert http.get(summary(campaign_id=8)).headers["x-cache"] == "HIT"
        again = _calls(conn)
        locks = conn.keys("*:lock")
        conn.close()
    spent = {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}
    # Redis counts the commands a script runs too: the two EVALSHA are the lock with its
    # lookup (set, get) and the store with the release (set, get, del). One `info` is ours.
    assert spent == {"get": 3, "evalsha": 2, "set": 2, "del": 1, "info": 1}, spent
    assert {k: n - after.get(k, 0) for k, n in again.items() if n != after.get(k, 0)} == {"info": 1}
    assert locks == []
