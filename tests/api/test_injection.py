"""An SQL-injection corpus on every parameter of every route: 4xx, and nothing changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from adpulse.metadata.tables import metadata
from tests.api.conftest import AppFactory, Seeded

F, T = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"
BASE = {"from": F, "to": T}
ROUTES: dict[str, dict[str, str]] = {
    "summary": {**BASE, "campaign_id": "3", "compare": "previous"},
    "timeseries": {**BASE, "granularity": "hour", "campaign_id": "3"},
    "campaigns": {**BASE, "sort": "name", "order": "asc", "limit": "5", "offset": "0", "q": "x"},
    "export.csv": {**BASE, "sort": "name", "order": "asc", "q": "x"},
    "breakdown": {**BASE, "by": "country", "campaign_id": "3", "limit": "5"},
}
CORPUS = [
    "' OR '1'='1",
    "1 OR 1=1",
    "1; DROP TABLE events",
    "1); DROP DATABASE adpulse; --",
    "3' UNION SELECT name, 1, 1, 1, 1, 1, 1 FROM system.users --",
    "\\' OR 1=1 -- ",
    "1' AND sleep(3) --",
    "{campaign_id:UInt32}",
    "{s0:String}) OR (1=1",
    "'; INSERT INTO events SELECT * FROM events; --",
    "`events`",
    "now()",
    "2026-01-01T00:00:00Z' OR '1'='1",
    "2026-01-01 00:00:00'); DROP TABLE campaign_daily; --",
    "campaign_id DESC, (SELECT 1)",
    "spend_micros; DELETE FROM campaigns",
    "\x00",
    "1\nSETTINGS readonly=0",
    "%27%20OR%201%3D1",
    "${jndi:ldap://x/a}",
    "<script>alert(1)</script>",
    "x" * 5_000 + "'",
]


def day_ago(seeded: Seeded) -> int:
    """Epoch seconds a day before ClickHouse's now: the minute rollup's TTL (2 days) drops
    nothing after it while a test runs."""
    [(since,)] = seeded.client.query("SELECT toUnixTimestamp(now()) - 86400")
    return int(since)


def snapshot(seeded: Seeded, app_client: TestClient, since: int) -> list[Any]:
    """Everything an injection could change: tables, sums of each table, metadata rows.

    Sums, not row counts: merges collapse rollup rows, and the minute rollup's TTL drops old
    parts, so only its minutes after `since` (`day_ago`) are compared. A fixed bound, not
    `now() - INTERVAL 1 DAY` per snapshot, which moves between the two and drops a minute's
    events whenever a test runs across a minute boundary.
    """
    db = seeded.client.database
    state: list[Any] = seeded.client.query(
        "SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name", {"db": db}
    )
    for sql in (
        "SELECT count(), sum(cost_micros), sum(revenue_micros) FROM {db}.events",
        "SELECT sum(events), sum(cost_micros) FROM {db}.events_per_minute "
        "WHERE minute > toDateTime({{since:UInt32}}, 'UTC')",
        "SELECT sum(events), sum(cost_micros) FROM {db}.campaign_hourly",
        "SELECT sum(impressions), sum(spend_micros) FROM {db}.campaign_daily",
        "SELECT sum(impressions), sum(spend_micros) FROM {db}.breakdown_hourly",
        "SELECT sum(impressions), sum(spend_micros) FROM {db}.publisher_hourly",
    ):
        state += seeded.client.query(sql.format(db=db), {"since": since})
    store = app_client.app.state.ctx.store  # type: ignore[attr-defined]
    with store.begin() as conn:
        for table in metadata.sorted_tables:
            state.append(sorted(map(tuple, conn.execute(select(table)))))
    return state


@pytest.fixture(scope="module")
def http(make_module_app: AppFactory) -> Iterator[TestClient]:
    with TestClient(make_module_app()) as client:
        yield client


@pytest.mark.parametrize("route", list(ROUTES))
def test_every_parameter_refuses_the_corpus(http: TestClient, seeded: Seeded, route: str) -> None:
    since = day_ago(seeded)
    before = snapshot(seeded, http, since)
    assert http.get(f"/api/v1/{route}", params=ROUTES[route]).status_code == 200
    failures = []
    for param in ROUTES[route]:
        for payload in CORPUS:
            response = http.get(f"/api/v1/{route}", params={**ROUTES[route], param: payload})
            if not 400 <= response.status_code < 500:
                failures.append((param, payload[:40], response.status_code))
    assert failures == []
    assert snapshot(seeded, http, since) == before


def test_sql_looking_search_text_is_only_text(http: TestClient) -> None:
    """Text the search allows is matched as text, never run: it finds nothing, changes nothing."""
    response = http.get("/api/v1/campaigns", params={**BASE, "q": "x OR 1 - 1 -- drop"})
    assert response.status_code == 200
    assert response.json()["total"] == 0
