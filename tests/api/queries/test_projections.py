"""The API's campaign-filtered reads use the rollups' by_campaign projections (migration 0006)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from adpulse.clickhouse.client import ClickHouseClient
from adpulse.clickhouse.embedded import _bind, _with_settings
from adpulse.clickhouse.migrate import Migrator
from adpulse.clickhouse.schema import SchemaOptions
from adpulse.events import to_columns
from adpulse.topology import single
from api.queries import sql
from api.queries.plan import plan
from api.queries.ranges import HOUR, TimeRange
from tests.support.events import random_events

# Six whole hours ending at the last full hour: windows below are fixed relative to it, so
# each test reads the same number of granules whatever the time of day.
BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=7)


@pytest.fixture
def rollups(chdb_db: ClickHouseClient) -> ClickHouseClient:
    Migrator(chdb_db, single(), SchemaOptions(database=chdb_db.database)).migrate()
    # Enough campaigns that one campaign's rows are spread over several granules of each
    # time-ordered rollup: the case the projections are for (with one granule either way,
    # ClickHouse rightly reads the table itself).
    start_ms = int(BASE.timestamp() * 1000)
    rng = random.Random(3)
    events = [
        e._replace(campaign_id=7 if i % 500 == 0 else rng.randrange(8, 6000))
        for i, e in enumerate(random_events(200_000, start_ms, 6 * 3_600_000, seed=3))
    ]
    chdb_db.insert("events", to_columns(events))
    return chdb_db


def explain(client: ClickHouseClient, query: sql.Query) -> str:
    with client._pool.session() as session:  # type: ignore[attr-defined]
        text = "EXPLAIN indexes = 1, projections = 1 " + query.sql
        result = session.query(_with_settings(text, None), "TSV", params=_bind(query.params))
    return str(result.bytes().decode())


def test_one_campaign_over_hours_and_minutes_reads_by_campaign(rollups: ClickHouseClient) -> None:
    # 50-minute edges from the minute rollup (~28k rows each), whole hours between.
    window = TimeRange(BASE + timedelta(minutes=10), BASE + timedelta(hours=5, minutes=50))
    segments = plan(window, BASE - timedelta(days=1))
    query = sql.totals(rollups.database, segments, campaign_id=7)
    text = explain(rollups, query)
    # Both tables the window needs (minute edges, hourly middle) come from the projection.
    assert text.count("ReadFromMergeTree (by_campaign)") == 2, text
    # And the answer is the same as summing the raw events.
    [row] = rollups.query(query.sql, query.params)
    [raw] = rollups.query(
        f"SELECT countIf(event_type = 'impression'), countIf(event_type = 'click'), "
        f"countIf(event_type = 'conversion'), sum(cost_micros), sum(revenue_micros) "
        f"FROM {rollups.database}.events WHERE campaign_id = 7 AND event_time >= "
        "{s:DateTime64(3, 'UTC')} AND event_time < {e:DateTime64(3, 'UTC')}",
        {
            "s": sql.param_time(window.start, "DateTime"),
            "e": sql.param_time(window.end, "DateTime"),
        },
    )
    assert tuple(row) == tuple(raw)


def test_one_campaign_breakdown_reads_by_campaign(rollups: ClickHouseClient) -> None:
    window = TimeRange(BASE, BASE + 6 * HOUR)
    query = sql.breakdown(rollups.database, window, sql.Dimension.COUNTRY, campaign_id=7, limit=10)
    assert "ReadFromMergeTree (by_campaign)" in explain(rollups, query)
