"""Every number the API returns equals an aggregate over the raw events, computed apart.

Ranges include ones not aligned to hours or minutes, ones crossing midnight, ones old enough
that the minute rollup's TTL forces the raw fallback, and ones spanning whole days.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import AppFactory, Seeded
from tests.api.support import (
    RecordingClient,
    ceil_to,
    expected,
    floor_to,
    iso,
    metrics_of,
    parse,
    raw_totals,
)

H, M, S = timedelta(hours=1), timedelta(minutes=1), timedelta(seconds=1)
CAMPAIGNS = [None, 3, 17, 999]  # 999 has no events: zeros and null ratios


def ranges(now: datetime) -> dict[str, tuple[datetime, datetime]]:
    recent_midnight = floor_to(now - 2 * H, 86_400)
    old_midnight = recent_midnight - timedelta(days=2)
    hour = floor_to(now - 3 * H, 3600)
    return {
        "recent-midnight": (
            recent_midnight - 47 * M - 13.5 * S,
            recent_midnight + H + 2 * M + 7 * S,
        ),
        "old-midnight": (old_midnight - 59 * M - 59.999 * S, old_midnight + H + M + 17 * S),
        "whole-days": (now - 74 * H + 13 * S, now - 5 * M - S),
        "whole-hours": (floor_to(now, 3600) - 30 * H, floor_to(now, 3600) - 2 * H),
        "inside-an-hour": (hour + 7 * M + 3 * S, hour + 32 * M + 3 * S),
        "under-a-minute": (now - 2 * H + 5.25 * S, now - 2 * H + 20 * S),
    }


RANGE_NAMES = list(ranges(datetime.now().astimezone()))


def get(app_client: TestClient, path: str, **params: Any) -> dict[str, Any]:
    response = app_client.get(path, params={k: v for k, v in params.items() if v is not None})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(params=[72, 0], ids=["hot-rollups", "clickhouse-only"])
def http(make_app: AppFactory, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """The app answering from the rollups held in memory (api/hot/) where the range allows,
    and the app reading ClickHouse for every answer: both must match the raw events."""
    with TestClient(make_app(api_hot_hours=request.param)) as client:
        yield client


@pytest.mark.parametrize("campaign_id", CAMPAIGNS)
@pytest.mark.parametrize("name", RANGE_NAMES)
def test_summary(http: TestClient, seeded: Seeded, name: str, campaign_id: int | None) -> None:
    start, end = ranges(seeded.now)[name]
    body = get(
        http,
        "/api/v1/summary",
        **{"from": iso(start), "to": iso(end)},
        campaign_id=campaign_id,
        compare="previous",
    )
    window = (floor_to(start, 60), ceil_to(end, 60))
    assert (parse(body["from"]), parse(body["to"])) == window
    [row] = raw_totals(seeded.client, *window, campaign_id=campaign_id)
    assert metrics_of(body) == expected(row)
    span = window[1] - window[0]
    previous = (window[0] - span, window[0])
    assert (parse(body["previous"]["from"]), parse(body["previous"]["to"])) == previous
    [row] = raw_totals(seeded.client, *previous, campaign_id=campaign_id)
    assert metrics_of(body["previous"]) == expected(row)
    if campaign_id is None and name != "under-a-minute":
        assert body["impressions"] > 0


def test_sources_are_rollups_except_minutes_past_the_minute_ttl(
    make_app: AppFactory, seeded: Seeded, recording: RecordingClient
) -> None:
    db = seeded.client.database
    with TestClient(make_app(api_hot_hours=0)) as http:
        for name, raw_expected in [("recent-midnight", False), ("old-midnight", True)]:
            start, end = ranges(seeded.now)[name]
            recording.statements.clear()
            get(http, "/api/v1/summary", **{"from": iso(start), "to": iso(end)})
            [sql] = recording.data_queries()
            assert f"FROM {db}.campaign_hourly " in sql
            assert (f"FROM {db}.events " in sql) is raw_expected, name
            assert (f"FROM {db}.events_per_minute " in sql) is not raw_expected, name
        start, end = ranges(seeded.now)["whole-days"]
        recording.statements.clear()
        get(http, "/api/v1/summary", **{"from": iso(start), "to": iso(end)})
        assert f"FROM {db}.campaign_daily " in recording.data_queries()[0]


@pytest.mark.parametrize("campaign_id", [None, 17])
@pytest.mark.parametrize(
    ("granularity", "name", "seconds"),
    [
        ("minute", "recent-midnight", 60),
        ("minute", "old-midnight", 60),
        ("hour", "whole-days", 3600),
        ("hour", "inside-an-hour", 3600),
        ("day", "whole-days", 86_400),
    ],
)
def test_timeseries(
    http: TestClient,
    seeded: Seeded,
    granularity: str,
    name: str,
    seconds: int,
    campaign_id: int | None,
) -> None:
    start, end = ranges(seeded.now)[name]
    body = get(
        http,
        "/api/v1/timeseries",
        **{"from": iso(start), "to": iso(end)},
        granularity=granularity,
        campaign_id=campaign_id,
    )
    window = (floor_to(start, seconds), ceil_to(end, seconds))
    assert (parse(body["from"]), parse(body["to"])) == window
    bucket = {60: "toStartOfMinute", 3600: "toStartOfHour", 86_400: "toStartOfDay"}[seconds]
    oracle = {
        row[0]: row[1:]
        for row in raw_totals(
            seeded.client, *window, campaign_id=campaign_id, key=f"{bucket}(event_time)"
        )
    }
    points = body["points"]
    assert len(points) == (window[1] - window[0]) // timedelta(seconds=seconds)
    assert [parse(p["t"]) for p in points][:1] == [window[0]]
    for point in points:
        assert metrics_of(point) == expected(oracle.pop(parse(point["t"]), [0] * 5)), point["t"]
    assert oracle == {}, "buckets with events but no point"


@pytest.mark.parametrize("name", ["whole-days", "recent-midnight", "old-midnight"])
def test_campaigns(http: TestClient, seeded: Seeded, name: str) -> None:
    start, end = ranges(seeded.now)[name]
    body = get(http, "/api/v1/campaigns", **{"from": iso(start), "to": iso(end)}, limit=500)
    window = (floor_to(start, 60), ceil_to(end, 60))
    assert (parse(body["from"]), parse(body["to"])) == window
    oracle = {row[0]: row[1:] for row in raw_totals(seeded.client, *window, key="campaign_id")}
    assert body["total"] == len(oracle) == len(body["rows"])
    for row in body["rows"]:
        assert metrics_of(row) == expected(oracle[row["campaign_id"]])
        known = row["campaign_id"] <= 20
        assert row["name"] == (f"Campaign {row['campaign_id']:02d}" if known else None)
    spends = [(-r["spend_micros"], r["campaign_id"]) for r in body["rows"]]
    assert spends == sorted(spends), "default order: spend descending, then campaign_id"


def test_campaign_pages_sorting_and_search(http: TestClient, seeded: Seeded) -> None:
    start, end = ranges(seeded.now)["whole-days"]
    window = {"from": iso(start), "to": iso(end)}
    full = get(http, "/api/v1/campaigns", **window, sort="name", order="asc", limit=500)["rows"]
    names = [r["name"] for r in full]
    known = [n for n in names if n is not None]
    assert known == sorted(known) and names[len(known) :] == [None] * (len(names) - len(known))
    pages = [
        get(http, "/api/v1/campaigns", **window, sort="name", order="asc", limit=7, offset=o)[
            "rows"
        ]
        for o in range(0, len(full), 7)
    ]
    assert [r for page in pages for r in page] == full
    found = get(http, "/api/v1/campaigns", **window, q="advertiser 2", limit=500)
    ids = sorted(r["campaign_id"] for r in found["rows"])
    assert ids == [i for i in range(1, 21) if i % 4 == 2] and found["total"] == len(ids)
    by_id = get(http, "/api/v1/campaigns", **window, q="33")["rows"]
    assert [r["campaign_id"] for r in by_id] == [33]


def test_export_csv_has_every_campaign_row(http: TestClient, seeded: Seeded) -> None:
    start, end = ranges(seeded.now)["whole-days"]
    window = {"from": iso(start), "to": iso(end)}
    response = http.get("/api/v1/export.csv", params=window)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment; filename=" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    table = get(http, "/api/v1/campaigns", **window, limit=500)["rows"]
    assert [int(r["campaign_id"]) for r in rows] == [r["campaign_id"] for r in table]
    for got, want in zip(rows, table, strict=True):
        assert int(got["spend_micros"]) == want["spend_micros"]
        assert got["ctr"] == ("" if want["ctr"] is None else repr(want["ctr"]))
        assert got["name"] == (want["name"] or "")


@pytest.mark.parametrize("campaign_id", [None, 3])
@pytest.mark.parametrize(
    ("by", "key"),
    [
        ("country", "toString(country)"),
        ("device_type", "toString(device_type)"),
        ("publisher_id", "toString(publisher_id)"),
    ],
)
@pytest.mark.parametrize("name", ["whole-days", "recent-midnight", "inside-an-hour"])
def test_breakdown(
    http: TestClient, seeded: Seeded, name: str, by: str, key: str, campaign_id: int | None
) -> None:
    start, end = ranges(seeded.now)[name]
    body = get(
        http,
        "/api/v1/breakdown",
        **{"from": iso(start), "to": iso(end)},
        by=by,
        campaign_id=campaign_id,
        limit=1000,
    )
    window = (floor_to(start, 3600), ceil_to(end, 3600))
    assert (parse(body["from"]), parse(body["to"])) == window
    oracle = raw_totals(seeded.client, *window, campaign_id=campaign_id, key=key)
    assert body["values_total"] == len(oracle)
    ranked = sorted(oracle, key=lambda r: (-r[1], r[0]))[:1000]
    assert [(r["value"], metrics_of(r)) for r in body["rows"]] == [
        (r[0], expected(r[1:])) for r in ranked
    ]


def test_live_is_the_last_fifteen_minutes(make_app: AppFactory, seeded: Seeded) -> None:
    with TestClient(make_app(clock=lambda: seeded.now)) as http:
        body = get(http, "/api/v1/live")
    end = floor_to(seeded.now, 60) + M
    assert (parse(body["from"]), parse(body["to"])) == (end - 15 * M, end)
    oracle = {
        r[0]: r[1:]
        for r in raw_totals(seeded.client, end - 15 * M, end, key="toStartOfMinute(event_time)")
    }
    assert [parse(p["t"]) for p in body["points"]] == [end - (15 - i) * M for i in range(15)]
    for point in body["points"]:
        assert metrics_of(point) == expected(oracle.get(parse(point["t"]), [0] * 5))
    assert sum(p["impressions"] for p in body["points"]) > 0


def test_freshness_is_the_newest_event(make_app: AppFactory, seeded: Seeded) -> None:
    later = seeded.now + timedelta(seconds=90)
    with TestClient(make_app(clock=lambda: later)) as http:
        body = get(http, "/api/v1/freshness")
    [(newest,)] = seeded.client.query(
        f"SELECT max(event_time) FROM {seeded.client.database}.events"
    )
    assert parse(body["newest_event_time"]) == newest
    assert body["lag_seconds"] == round((later - newest).total_seconds(), 3)
    assert parse(body["checked_at"]) == later
