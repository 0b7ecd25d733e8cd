"""SQL text: values only as bound parameters, identifiers validated. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adpulse.errors import ConfigError
from api.queries import sql
from api.queries.plan import Segment, Source
from api.queries.ranges import Granularity, TimeRange

T = datetime(2026, 11, 27, tzinfo=UTC)
H = timedelta(hours=1)


def test_totals_unions_segments_with_typed_parameters() -> None:
    segments = [
        Segment(Source.RAW, T - H, T - H / 2),
        Segment(Source.DAILY, T, T + 24 * H),
    ]
    query = sql.totals("adpulse", segments, campaign_id=7)
    assert "FROM adpulse.events WHERE ((event_time >= {s0:DateTime64(3, 'UTC')}" in query.sql
    assert "FROM adpulse.campaign_daily WHERE ((day >= {s1:Date} AND day < {e1:Date}))" in query.sql
    assert query.sql.count("campaign_id = {campaign_id:UInt32}") == 2
    assert query.params == {
        "campaign_id": 7,
        "s0": "2026-11-26 23:00:00",
        "e0": "2026-11-26 23:30:00",
        "s1": "2026-11-27",
        "e1": "2026-11-28",
    }


def test_segments_of_one_table_are_read_once_and_all_filtered() -> None:
    segments = [
        Segment(Source.MINUTE, T - H / 2, T),
        Segment(Source.HOURLY, T, T + H),
        Segment(Source.MINUTE, T + H, T + H * 1.5),
    ]
    query = sql.totals("db", segments, campaign_id=3)
    assert query.sql.count("FROM db.events_per_minute") == 1
    assert (
        "WHERE ((minute >= {s0:DateTime('UTC')} AND minute < {e0:DateTime('UTC')}) OR "
        "(minute >= {s2:DateTime('UTC')} AND minute < {e2:DateTime('UTC')})) "
        "AND campaign_id = {campaign_id:UInt32}"
    ) in query.sql


def test_two_periods_split_at_the_start_of_the_later() -> None:
    segments = [Segment(Source.HOURLY, T - H, T), Segment(Source.HOURLY, T, T + H)]
    query = sql.totals("db", segments, group=sql.SplitAt(T))
    assert "toUInt8(hour >= {cut_hourly:DateTime('UTC')}) AS k" in query.sql
    assert query.params["cut_hourly"] == "2026-11-27 00:00:00"
    assert query.columns[0] == "key"


def test_bucketed_totals_group_by_the_bucket_start() -> None:
    query = sql.totals("db", [Segment(Source.HOURLY, T, T + H)], group=Granularity.DAY)
    assert "toStartOfDay(hour) AS k" in query.sql and query.sql.endswith("GROUP BY k ORDER BY k")


def test_database_names_are_validated() -> None:
    with pytest.raises(ConfigError, match="not a plain identifier"):
        sql.totals("db; DROP TABLE x", [Segment(Source.HOURLY, T, T + H)])


@pytest.mark.parametrize(
    ("by", "campaign_id", "table"),
    [
        (sql.Dimension.COUNTRY, None, "breakdown_hourly"),
        (sql.Dimension.DEVICE_TYPE, 5, "breakdown_hourly"),
        (sql.Dimension.PUBLISHER_ID, None, "publisher_hourly"),
        (sql.Dimension.PUBLISHER_ID, 5, "events"),
    ],
)
def test_breakdown_reads_rollups_except_publishers_of_one_campaign(
    by: sql.Dimension, campaign_id: int | None, table: str
) -> None:
    query = sql.breakdown("db", TimeRange(T, T + H), by, campaign_id=campaign_id, limit=10)
    assert f"FROM db.{table} WHERE" in query.sql
    assert query.params["limit"] == 10
    assert ("dimension" in query.params) is (table == "breakdown_hourly")
