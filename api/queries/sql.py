"""SQL text for the API's questions. Pure: returns text and bound parameters, never runs it.

Values always travel as ClickHouse server-side parameters (`{name:Type}`); the only other
things in the text are this module's own constants and `validate_identifier`-checked names.
Rollups are SummingMergeTree, so every read sums with GROUP BY even after merges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from adpulse import names
from adpulse.clickhouse.identifiers import validate_identifier
from api.queries.plan import Segment, Source
from api.queries.ranges import Granularity, TimeRange

RAW_TIME = "DateTime64(3, 'UTC')"
COUNTS = ("impressions", "clicks", "conversions", "spend_micros", "revenue_micros")
# Tables keyed by event_type are summed per type first, then pivoted: summing per type
# matches the rollups' `totals` projections (migrations 0004, 0005), which a direct
# sumIf(events, event_type = ...) does not.
_PER_TYPE = "event_type, sum(events) AS n, sum(cost_micros) AS cost, sum(revenue_micros) AS revenue"
_TYPE_SUMS: tuple[str, ...] = (
    "sumIf(n, event_type = 'impression')",
    "sumIf(n, event_type = 'click')",
    "sumIf(n, event_type = 'conversion')",
    "sum(cost)",
    "sum(revenue)",
)
_RAW_SUMS: tuple[str, ...] = (
    "countIf(event_type = 'impression')",
    "countIf(event_type = 'click')",
    "countIf(event_type = 'conversion')",
    "sum(cost_micros)",
    "sum(revenue_micros)",
)
_COUNT_SUMS: tuple[str, ...] = tuple(f"sum({c})" for c in COUNTS)
_BLOCK_ROW_VALUES: tuple[str, ...] = (  # one row's share of COUNTS, in tables per event_type
    "if(event_type = 'impression', events, 0)",
    "if(event_type = 'click', events, 0)",
    "if(event_type = 'conversion', events, 0)",
    "cost_micros",
    "revenue_micros",
)
_BUCKET = {
    Granularity.MINUTE: "toStartOfMinute",
    Granularity.HOUR: "toStartOfHour",
    Granularity.DAY: "toStartOfDay",
}


@dataclass(frozen=True)
class _Table:
    name: str
    time: str  # the time column
    time_type: str  # its parameter type
    sums: tuple[str, ...]  # expressions for COUNTS, in order
    time_value: str = ""  # the time column as a UTC DateTime, when it is not one
    per_type: bool = False  # rows are per event_type: sum per type, then pivot

    def moment(self) -> str:
        return self.time_value or self.time


_TABLES = {
    Source.DAILY: _Table(
        names.CAMPAIGN_DAILY_TABLE, "day", "Date", _COUNT_SUMS, "toDateTime(day, 'UTC')"
    ),
    Source.HOURLY: _Table(
        names.EVENTS_HOURLY_TABLE, "hour", "DateTime('UTC')", _TYPE_SUMS, per_type=True
    ),
    Source.MINUTE: _Table(
        names.EVENTS_MINUTE_TABLE, "minute", "DateTime('UTC')", _TYPE_SUMS, per_type=True
    ),
    # event_time is DateTime64(3): compared with a DateTime parameter, ClickHouse dropped an
    # event at 20:59:59.999 from `< 21:00:00` (tests/api/test_numbers.py caught it).
    Source.RAW: _Table(names.EVENTS_TABLE, "event_time", RAW_TIME, _RAW_SUMS),
}


class Dimension(StrEnum):
    COUNTRY = "country"
    DEVICE_TYPE = "device_type"
    PUBLISHER_ID = "publisher_id"


@dataclass(frozen=True)
class Query:
    """A statement and its bound parameters. `columns` names what each row holds."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    columns: tuple[str, ...] = ()


def param_time(moment: datetime, time_type: str) -> str:
    """A UTC moment as ClickHouse parses it for a Date or DateTime parameter."""
    return moment.strftime("%Y-%m-%d" if time_type == "Date" else "%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class SplitAt:
    """Group into two periods: key 1 for rows at or after `at`, 0 for rows before it.

    Every segment must lie wholly on one side (plan each period separately)."""

    at: datetime


GroupBy = Granularity | SplitAt | str | None  # a bucket size, two periods, "campaign_id", none


def totals(
    database: str, segments: list[Segment], *, group: GroupBy = None, campaign_id: int | None = None
) -> Query:
    """Counts and sums over `segments`, optionally per campaign, time bucket or period.

    Rows: (key, *COUNTS) ordered by key, or one row of COUNTS without a group. Each table is
    read once, with its segments ORed: on chDB a query pays ~5 ms per table read however few
    rows it reads, so reading the minute rollup once for both edges of a range matters.
    """
    if not segments:
        raise ValueError("totals needs at least one segment")
    db = validate_identifier(database, what="database")
    params: dict[str, Any] = {}
    if campaign_id is not None:
        params["campaign_id"] = campaign_id
    ranges: dict[Source, list[str]] = {}
    for i, segment in enumerate(segments):
        table = _TABLES[segment.source]
        params[f"s{i}"] = param_time(segment.start, table.time_type)
        params[f"e{i}"] = param_time(segment.end, table.time_type)
        start = f"{table.time} >= {{s{i}:{table.time_type}}}"
        end = f"{table.time} < {{e{i}:{table.time_type}}}"
        ranges.setdefault(segment.source, []).append(f"{start} AND {end}")
    parts = []
    for source, conditions in ranges.items():
        table = _TABLES[source]
        # Parenthesised: AND binds tighter than OR, and the campaign filter follows.
        where = ["((" + ") OR (".join(conditions) + "))"]
        if campaign_id is not None:
            where.append("campaign_id = {campaign_id:UInt32}")
        key = _key_expression(group, table)
        if isinstance(group, SplitAt):
            params[f"cut_{source.value}"] = param_time(group.at, table.time_type)
            key = f"toUInt8({table.time} >= {{cut_{source.value}:{table.time_type}}})"
        parts.append(_segment_sql(f"{db}.{table.name}", table, where, key))
    columns = COUNTS if group is None else ("key", *COUNTS)
    if len(parts) == 1:
        return Query(parts[0] + ("" if group is None else " ORDER BY k"), params, columns)
    outer = ", ".join(f"sum({c}) AS {c}" for c in COUNTS)
    union = "\n    UNION ALL ".join(parts)
    if group is None:
        return Query(f"SELECT {outer}\nFROM (\n    {union}\n)", params, COUNTS)
    sql = f"SELECT k, {outer}\nFROM (\n    {union}\n)\nGROUP BY k ORDER BY k"
    return Query(sql, params, ("key", *COUNTS))


def _segment_sql(source: str, table: _Table, where: list[str], key: str) -> str:
    sums = ", ".join(f"{expr} AS {name}" for expr, name in zip(table.sums, COUNTS, strict=True))
    keyed = f"{key} AS k, " if key else ""
    group = " GROUP BY k" if key else ""
    if not table.per_type:
        return f"SELECT {keyed}{sums} FROM {source} WHERE {' AND '.join(where)}{group}"
    inner = (
        f"SELECT {keyed}{_PER_TYPE} FROM {source} WHERE {' AND '.join(where)} "
        f"GROUP BY {'k, ' if key else ''}event_type"
    )
    return f"SELECT {'k, ' if key else ''}{sums} FROM ({inner}){group}"


def _key_expression(group: GroupBy, table: _Table) -> str:
    if group is None or isinstance(group, SplitAt):
        return ""
    if isinstance(group, Granularity):
        return f"{_BUCKET[group]}({table.moment()})"
    if group == "campaign_id":
        return "campaign_id"
    raise ValueError(f"unknown grouping {group!r}")


def breakdown(
    database: str, window: TimeRange, by: Dimension, *, campaign_id: int | None, limit: int
) -> Query:
    """Counts and sums per value of `by` over whole hours, biggest first.

    Rows: (value, *COUNTS, number of distinct values). Country and device come from
    `breakdown_hourly`; publishers from `publisher_hourly`, or from raw events when one
    campaign is asked for (a publisher x campaign rollup would be nearly as big as the events).
    """
    db = validate_identifier(database, what="database")
    params: dict[str, Any] = {
        "start": param_time(window.start, "DateTime"),
        "end": param_time(window.end, "DateTime"),
        "limit": limit,
    }
    where = []
    if by is Dimension.PUBLISHER_ID and campaign_id is not None:
        source, time_col, sums, value = names.EVENTS_TABLE, "event_time", _RAW_SUMS, "publisher_id"
    elif by is Dimension.PUBLISHER_ID:
        source, time_col, sums, value = (
            names.PUBLISHER_HOURLY_TABLE,
            "hour",
            _COUNT_SUMS,
            "publisher_id",
        )
    else:
        source, time_col, sums, value = names.BREAKDOWN_HOURLY_TABLE, "hour", _COUNT_SUMS, "value"
        where.append("dimension = {dimension:String}")
        params["dimension"] = by.value
    time_type = RAW_TIME if time_col == "event_time" else "DateTime('UTC')"
    where += [f"{time_col} >= {{start:{time_type}}}", f"{time_col} < {{end:{time_type}}}"]
    if campaign_id is not None:
        where.append("campaign_id = {campaign_id:UInt32}")
        params["campaign_id"] = campaign_id
    sums_sql = ", ".join(f"{expr} AS {name}" for expr, name in zip(sums, COUNTS, strict=True))
    inner = (
        f"SELECT toString({value}) AS value, {sums_sql} FROM {db}.{source} "
        f"WHERE {' AND '.join(where)} GROUP BY value"
    )
    sql = (
        f"SELECT value, {', '.join(COUNTS)}, count() OVER () AS values_total\n"
        f"FROM ({inner})\nORDER BY impressions DESC, value ASC LIMIT {{limit:UInt32}}"
    )
    return Query(sql, params, ("value", *COUNTS, "values_total"))


def newest_event(database: str) -> Query:
    """The newest event_time and the number of events (0: there is no newest).

    Exactly this shape is answered from part metadata (the implicit minmax_count projection:
    event_time is in the partition key), reading a dozen rows instead of the table:
    maxOrNull(), or any WHERE, scanned all 200M rows of the benchmark in 1.3 to 6.5 s.
    """
    db = validate_identifier(database, what="database")
    sql = f"SELECT max(event_time), count() FROM {db}.{names.EVENTS_TABLE}"
    return Query(sql, {}, ("newest", "events"))


def campaign_blocks(database: str, source: Source, window: TimeRange) -> Query:
    """Every campaign's counts and sums in `window` of one table: per day or hour from the
    daily and hourly rollups (their own rows), per minute from the minute rollup and raw
    events. For api/hot/reads.py, all Int64:

    (bucket start in epoch seconds, campaign_id, *COUNTS)

    Rollup rows come as stored, not grouped: a (bucket, campaign) may repeat (once per event
    type, and again in parts not merged yet), and the reader adds them up. Grouping them here
    cost chDB 2.5x the time of reading them. Raw events are grouped per minute here.
    """
    db = validate_identifier(database, what="database")
    table = _TABLES[source]
    params = {
        "start": param_time(window.start, table.time_type),
        "end": param_time(window.end, table.time_type),
    }
    where = (
        f"{table.time} >= {{start:{table.time_type}}} AND {table.time} < {{end:{table.time_type}}}"
    )
    if source is Source.RAW:
        moment, values, group = f"toStartOfMinute({table.time})", _RAW_SUMS, "\nGROUP BY t, c"
    else:
        moment, group = table.moment(), ""
        values = _BLOCK_ROW_VALUES if table.per_type else COUNTS
    columns = ", ".join(
        f"toInt64({expr}) AS {name}" for expr, name in zip(values, COUNTS, strict=True)
    )
    sql = (
        f"SELECT toInt64(toUInt32({moment})) AS t, toInt64(campaign_id) AS c, {columns}\n"
        f"FROM {db}.{table.name}\nWHERE {where}{group}"
    )
    return Query(sql, params, ("t", "campaign_id", *COUNTS))


def _breakdown_where(by: Dimension) -> str:
    if by is Dimension.PUBLISHER_ID:
        raise ValueError("publishers have no per-campaign hourly rollup")
    return (
        "dimension = {dimension:String} "
        "AND hour >= {start:DateTime('UTC')} AND hour < {end:DateTime('UTC')}"
    )


def breakdown_values(database: str, by: Dimension, window: TimeRange) -> Query:
    """The values of `by` (country or device type) with rows in `window`."""
    db = validate_identifier(database, what="database")
    sql = (
        f"SELECT DISTINCT toString(value) FROM {db}.{names.BREAKDOWN_HOURLY_TABLE} "
        f"WHERE {_breakdown_where(by)}"
    )
    return Query(sql, _breakdown_params(by, window), ("value",))


def breakdown_blocks(
    database: str, by: Dimension, window: TimeRange, values: Sequence[str]
) -> Query:
    """Every campaign's counts and sums per value of `by` in `window`, per hour. For
    api/hot/reads.py, all Int64, rows as stored (see campaign_blocks):

    (hour in epoch seconds, campaign_id, 1 + the value's index in `values` or 0, *COUNTS)
    """
    db = validate_identifier(database, what="database")
    counts = ", ".join(f"toInt64({name}) AS {name}" for name in COUNTS)
    sql = (
        "SELECT toInt64(toUInt32(hour)) AS t, toInt64(campaign_id) AS c, "
        f"toInt64(indexOf({{values:Array(String)}}, toString(value))) AS v, {counts}\n"
        f"FROM {db}.{names.BREAKDOWN_HOURLY_TABLE}\nWHERE {_breakdown_where(by)}"
    )
    params = _breakdown_params(by, window) | {"values": list(values)}
    return Query(sql, params, ("t", "campaign_id", "value", *COUNTS))


def _breakdown_params(by: Dimension, window: TimeRange) -> dict[str, Any]:
    return {
        "dimension": by.value,
        "start": param_time(window.start, "DateTime"),
        "end": param_time(window.end, "DateTime"),
    }
