"""The test oracle: what ClickHouse holds, computed independently of the code under test."""

from __future__ import annotations

from dataclasses import dataclass

from adpulse.clickhouse.client import ClickHouseClient

ROLLUP_VS_RAW = {
    "events_per_minute": (
        "SELECT minute, campaign_id, toString(event_type), sum(events), sum(cost_micros), "
        "sum(revenue_micros) FROM {db}.events_per_minute GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        "SELECT toStartOfMinute(event_time), campaign_id, toString(event_type), count(), "
        "sum(cost_micros), sum(revenue_micros) FROM {db}.events GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    ),
    "campaign_hourly": (
        "SELECT hour, campaign_id, advertiser_id, toString(event_type), sum(events), "
        "sum(cost_micros), sum(revenue_micros) FROM {db}.campaign_hourly "
        "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
        "SELECT toStartOfHour(event_time), campaign_id, advertiser_id, toString(event_type), "
        "count(), sum(cost_micros), sum(revenue_micros) FROM {db}.events "
        "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
    ),
    "campaign_daily": (
        "SELECT day, campaign_id, advertiser_id, sum(impressions), sum(clicks), "
        "sum(conversions), sum(spend_micros), sum(revenue_micros) FROM {db}.campaign_daily "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        "SELECT toDate(event_time), campaign_id, advertiser_id, countIf(event_type = 'impression'),"
        " countIf(event_type = 'click'), countIf(event_type = 'conversion'), sum(cost_micros), "
        "sum(revenue_micros) FROM {db}.events GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    ),
}


@dataclass(frozen=True)
class Verdict:
    rows: int
    ids: frozenset[str]
    rollups_match: dict[str, bool]


def inspect(client: ClickHouseClient) -> Verdict:
    """Row count, the set of event_ids, and whether each rollup equals its raw aggregate."""
    db = client.database
    ids = [row[0] for row in client.query(f"SELECT event_id FROM {db}.events")]
    match = {
        name: client.query(rollup.format(db=db)) == client.query(raw.format(db=db))
        for name, (rollup, raw) in ROLLUP_VS_RAW.items()
    }
    return Verdict(len(ids), frozenset(ids), match)
