"""The dashboard's query set, each asked of its rollup and, as the baseline, of raw events.

Both forms answer the same question with the same columns, so a run can check they agree.
Parameters: day (Date), day_start/day_end (DateTime, the UTC day), week_start (Date, six days
before `day`), since (DateTime, start of the last 15 minutes of data).
"""

from __future__ import annotations

from dataclasses import dataclass

_TYPE_SUMS = (
    "sumIf(events, event_type = 'impression') AS impressions, "
    "sumIf(events, event_type = 'click') AS clicks, "
    "sumIf(events, event_type = 'conversion') AS conversions, "
    "sum(cost_micros) AS spend_micros, sum(revenue_micros) AS revenue_micros"
)
_RAW_COUNTS = (
    "countIf(event_type = 'impression') AS impressions, "
    "countIf(event_type = 'click') AS clicks, "
    "countIf(event_type = 'conversion') AS conversions, "
    "sum(cost_micros) AS spend_micros, sum(revenue_micros) AS revenue_micros"
)
_DAY = "event_time >= {day_start:DateTime('UTC')} AND event_time < {day_end:DateTime('UTC')}"


@dataclass(frozen=True)
class BenchQuery:
    name: str
    question: str
    rollup: str  # `{db}` is replaced by the database before running
    raw: str


QUERIES = (
    BenchQuery(
        "summary_day",
        "KPI tiles: impressions, clicks, conversions, spend, revenue for one UTC day",
        "SELECT sum(impressions), sum(clicks), sum(conversions), sum(spend_micros), "
        "sum(revenue_micros) FROM {db}.campaign_daily WHERE day = {day:Date}",
        f"SELECT {_RAW_COUNTS} FROM {{db}}.events WHERE {_DAY}",
    ),
    BenchQuery(
        "hourly_day",
        "Line chart: the same five measures per hour of one UTC day",
        f"SELECT hour, {_TYPE_SUMS} FROM {{db}}.campaign_hourly "
        "WHERE hour >= {day_start:DateTime('UTC')} AND hour < {day_end:DateTime('UTC')} "
        "GROUP BY hour ORDER BY hour",
        f"SELECT toStartOfHour(event_time) AS hour, {_RAW_COUNTS} FROM {{db}}.events "
        f"WHERE {_DAY} GROUP BY hour ORDER BY hour",
    ),
    BenchQuery(
        "top_campaigns_7d",
        "Campaigns table: top 50 campaigns by spend over the last 7 days, with their funnel",
        "SELECT campaign_id, advertiser_id, sum(impressions) AS impressions, "
        "sum(clicks) AS clicks, sum(conversions) AS conversions, sum(spend_micros) AS spend, "
        "sum(revenue_micros) AS revenue FROM {db}.campaign_daily "
        "WHERE day >= {week_start:Date} AND day <= {day:Date} "
        "GROUP BY campaign_id, advertiser_id ORDER BY spend DESC, campaign_id LIMIT 50",
        "SELECT campaign_id, advertiser_id, countIf(event_type = 'impression') AS impressions, "
        "countIf(event_type = 'click') AS clicks, "
        "countIf(event_type = 'conversion') AS conversions, "
        "sum(cost_micros) AS spend, sum(revenue_micros) AS revenue FROM {db}.events "
        "WHERE event_time >= toDateTime({week_start:Date}, 'UTC') "
        "AND event_time < toDateTime({day:Date} + 1, 'UTC') "
        "GROUP BY campaign_id, advertiser_id ORDER BY spend DESC, campaign_id LIMIT 50",
    ),
    BenchQuery(
        "last_15_minutes",
        "Live panel: the five measures per minute for the last 15 minutes of data",
        # The inner query has the shape of the totals_by_minute projection, so it reads the
        # per-minute totals instead of every campaign's row; the outer one pivots the types.
        f"SELECT minute, {_TYPE_SUMS} FROM (SELECT minute, event_type, sum(events) AS events, "
        "sum(cost_micros) AS cost_micros, sum(revenue_micros) AS revenue_micros "
        "FROM {db}.events_per_minute WHERE minute >= {since:DateTime('UTC')} "
        "GROUP BY minute, event_type) GROUP BY minute ORDER BY minute",
        f"SELECT toStartOfMinute(event_time) AS minute, {_RAW_COUNTS} FROM {{db}}.events "
        "WHERE event_time >= {since:DateTime('UTC')} GROUP BY minute ORDER BY minute",
    ),
)
