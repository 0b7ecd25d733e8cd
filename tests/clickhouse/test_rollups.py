"""Each rollup equals the same aggregate over the raw table, exactly; retries don't count twice."""

from __future__ import annotations

import pytest

from adpulse.clickhouse.client import ClickHouseClient
from adpulse.clickhouse.migrate import Migrator
from adpulse.clickhouse.schema import SchemaOptions
from adpulse.events import to_columns
from adpulse.topology import single
from tests.support.events import HOUR_MS, random_events
from tests.support.oracle import ROLLUP_VS_RAW

DAY_S = 86_400
DEDUP = {"deduplicate_blocks_in_dependent_materialized_views": 1}


@pytest.fixture
def schema(chdb_db: ClickHouseClient) -> ClickHouseClient:
    Migrator(chdb_db, single(), SchemaOptions(database=chdb_db.database)).migrate()
    return chdb_db


@pytest.fixture
def start_ms(schema: ClickHouseClient) -> int:
    """21:00 UTC before the latest midnight at least 6 h past: a 6-hour batch from there
    crosses that midnight, lies wholly in the past and inside the minute rollup's 2-day TTL
    (at most 33 h old).

    From ClickHouse's clock, not this process's: ClickHouse applies the TTL by its own.
    """
    [(now_s,)] = schema.query("SELECT toUnixTimestamp(now())")
    midnight_s = (int(now_s) - 6 * 3600) // DAY_S * DAY_S
    return (midnight_s - 3 * 3600) * 1000


def totals(client: ClickHouseClient) -> list[tuple[object, ...]]:
    db = client.database
    return [
        client.query(f"SELECT count(), sum(cost_micros), sum(revenue_micros) FROM {db}.events")[0],
        client.query(f"SELECT sum(events) FROM {db}.events_per_minute")[0],
        client.query(f"SELECT sum(events) FROM {db}.campaign_hourly")[0],
        client.query(f"SELECT sum(impressions + clicks + conversions) FROM {db}.campaign_daily")[0],
    ]


@pytest.mark.parametrize("rollup", sorted(ROLLUP_VS_RAW))
def test_rollup_equals_raw_aggregate(schema: ClickHouseClient, start_ms: int, rollup: str) -> None:
    events = random_events(20_000, start_ms, 6 * HOUR_MS)
    # Several blocks, as the consumer writes them.
    for i in range(0, len(events), 5_000):
        schema.insert("events", to_columns(events[i : i + 5_000]), settings=DEDUP)
    rollup_sql, raw_sql = ROLLUP_VS_RAW[rollup]
    from_rollup = schema.query(rollup_sql.format(db=schema.database))
    from_raw = schema.query(raw_sql.format(db=schema.database))
    assert len(from_raw) > 100
    assert from_rollup == from_raw


def test_retried_insert_with_same_token_changes_nothing(
    schema: ClickHouseClient, start_ms: int
) -> None:
    columns = to_columns(random_events(3_000, start_ms, 2 * HOUR_MS, seed=11))
    token = {"insert_deduplication_token": "ad-events:0:1000-3999", **DEDUP}
    schema.insert("events", columns, settings=token)
    before = totals(schema)
    schema.insert("events", columns, settings=token)
    assert totals(schema) == before
    assert before[0][0] == 3_000


def test_negative_control_duplicate_without_dedup_is_caught_by_the_oracle(
    schema: ClickHouseClient, start_ms: int
) -> None:
    """Guards the test above: when dedup is off, the same oracle must see the double count."""
    columns = to_columns(random_events(3_000, start_ms, 2 * HOUR_MS, seed=12))
    for _ in range(2):
        schema.insert("events", columns, settings={"insert_deduplicate": 0})
    db = schema.database
    count, distinct = schema.query(f"SELECT count(), uniqExact(event_id) FROM {db}.events")[0]
    assert (count, distinct) == (6_000, 3_000)
    assert totals(schema)[2] == (6_000,)


def test_live_totals_projection_answers_exactly(schema: ClickHouseClient, start_ms: int) -> None:
    """The live panel's shape (totals per minute and type) reads the projection and agrees."""
    events = random_events(8_000, start_ms, 2 * HOUR_MS, seed=13)
    schema.insert("events", to_columns(events), settings=DEDUP)
    db = schema.database
    live = (
        f"SELECT minute, toString(event_type), sum(events), sum(cost_micros), sum(revenue_micros) "
        f"FROM {db}.events_per_minute GROUP BY minute, event_type ORDER BY 1, 2"
    )
    raw = (
        f"SELECT toStartOfMinute(event_time), toString(event_type), count(), sum(cost_micros), "
        f"sum(revenue_micros) FROM {db}.events GROUP BY 1, 2 ORDER BY 1, 2"
    )
    assert schema.query(live) == schema.query(raw)
    [(projections,)] = schema.query(
        "SELECT count() FROM system.projections WHERE database = {db:String} "
        "AND table = 'events_per_minute' AND name = 'totals_by_minute'",
        {"db": db},
    )
    assert projections == 1
