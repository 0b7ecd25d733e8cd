"""Health, readiness, metrics, and what a slow or missing ClickHouse looks like to clients."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient

from adpulse.clickhouse.client import (
    ClickHouseClient,
    Params,
    QuerySettings,
    Row,
    UnavailableError,
)
from adpulse.clickhouse.migrate import Migrator
from adpulse.clickhouse.schema import SchemaOptions
from adpulse.topology import single
from tests.api.conftest import AppFactory, Seeded
from tests.api.support import RecordingClient

SUMMARY = "/api/v1/summary?from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z"


class SlowClient(RecordingClient):
    """Runs a query that would take minutes in place of the API's, under the API's settings."""

    def query(
        self, sql: str, params: Params | None = None, settings: QuerySettings | None = None
    ) -> list[Row]:
        if sql == "SELECT 1":
            return self.inner.query(sql, params, settings)
        heavy = "SELECT count() FROM numbers(1000000000) WHERE sipHash64(sipHash64(number)) = 0"
        return self.inner.query(heavy, None, settings)


class HangingClient(RecordingClient):
    """Never answers in time, as a wedged connection would."""

    def query(
        self, sql: str, params: Params | None = None, settings: QuerySettings | None = None
    ) -> list[Row]:
        time.sleep(5)
        return []


class DownClient(RecordingClient):
    def query(
        self, sql: str, params: Params | None = None, settings: QuerySettings | None = None
    ) -> list[Row]:
        raise UnavailableError("ClickHouse at ch1:9000 unreachable: connection refused")


def test_healthz_and_readyz(make_app: AppFactory) -> None:
    with TestClient(make_app()) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").json() == {"status": "ready", "clickhouse": "ok", "cache": "ok"}


def test_readyz_is_503_when_clickhouse_is_down_and_data_routes_say_why(
    make_app: AppFactory, seeded: Seeded
) -> None:
    with TestClient(make_app(client=DownClient(seeded.client))) as http:
        ready = http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "down"
        response = http.get(SUMMARY)
    assert response.status_code == 503
    assert response.json()["detail"].startswith("ClickHouse is unavailable; try again shortly")


def test_a_query_out_of_time_is_504_with_a_message(make_app: AppFactory, seeded: Seeded) -> None:
    app = make_app(client=SlowClient(seeded.client), api_query_timeout_s=0.5)
    with TestClient(app) as http:
        started = time.monotonic()
        response = http.get(SUMMARY)
        elapsed = time.monotonic() - started
        metrics = http.get("/metrics").text
    assert response.status_code == 504
    assert response.json() == {
        "detail": "the query ran longer than 0.5 s and was stopped; narrow the range, use a "
        "coarser granularity or filter by campaign_id"
    }
    assert elapsed < 2.5, "ClickHouse should have stopped the query itself"
    assert 'adpulse_api_clickhouse_failures_total{reason="timeout"} 1.0' in metrics


@pytest.mark.anyio
async def test_a_hung_query_never_hangs_the_worker(make_app: AppFactory, seeded: Seeded) -> None:
    app = make_app(client=HangingClient(seeded.client), api_query_timeout_s=0.3)
    answers: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:

            async def slow() -> None:
                started = time.monotonic()
                answers["slow"] = (await client.get(SUMMARY)).status_code
                answers["slow_s"] = time.monotonic() - started

            async def quick() -> None:
                await anyio.sleep(0.1)
                started = time.monotonic()
                answers["health"] = (await client.get("/healthz")).status_code
                answers["health_s"] = time.monotonic() - started

            async with anyio.create_task_group() as group:
                group.start_soon(slow)
                group.start_soon(quick)
    assert answers["slow"] == 504 and answers["slow_s"] < 3
    assert answers["health"] == 200 and answers["health_s"] < 0.5


def test_freshness_without_events_is_null(make_app: AppFactory, chdb_db: ClickHouseClient) -> None:
    Migrator(chdb_db, single(), SchemaOptions(database=chdb_db.database)).migrate()
    with TestClient(make_app(client=chdb_db)) as http:
        body = http.get("/api/v1/freshness").json()
        live = http.get("/api/v1/live").json()
    assert (body["newest_event_time"], body["lag_seconds"]) == (None, None)
    assert [p["impressions"] for p in live["points"]] == [0] * 15
    assert {p["ctr"] for p in live["points"]} == {None}


def test_metrics_report_requests_cache_and_queries(make_app: AppFactory) -> None:
    with TestClient(make_app()) as http:
        http.get(SUMMARY)
        http.get(SUMMARY)
        text = http.get("/metrics").text
    lines: Mapping[str, str] = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line[0] != "#"
    )
    assert lines['adpulse_api_cache_requests_total{endpoint="summary",result="miss"}'] == "1.0"
    assert lines['adpulse_api_cache_requests_total{endpoint="summary",result="hit"}'] == "1.0"
    assert lines['adpulse_api_clickhouse_seconds_count{endpoint="summary"}'] == "1.0"
    key = 'adpulse_api_request_seconds_count{method="GET",route="/api/v1/summary",status="200"}'
    assert lines[key] == "2.0"
