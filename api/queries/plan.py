"""Which table answers which piece of a range. Pure.

Rollups answer whatever they can: whole days from `campaign_daily`, whole hours from
`campaign_hourly`, whole minutes from `events_per_minute` while its TTL still holds them, and
only minutes older than that from the raw `events` table. Ranges reaching this module are
already whole minutes (see ranges.widen), so no query ever cuts a minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from api.queries.ranges import DAY, HOUR, MINUTE, Granularity, TimeRange, ceil, floor, is_aligned

# The minute rollup drops a day's part once all its rows are older than its TTL; until then
# every row is there. The margin absorbs clock skew between this host and ClickHouse.
MINUTE_TTL_MARGIN = timedelta(minutes=10)


class Source(StrEnum):
    DAILY = "daily"
    HOURLY = "hourly"
    MINUTE = "minute"
    RAW = "raw"


@dataclass(frozen=True)
class Segment:
    source: Source
    start: datetime
    end: datetime


def minute_rollup_floor(now: datetime, retention: timedelta) -> datetime:
    """The earliest minute the minute rollup is guaranteed to still hold."""
    return ceil(now - retention + MINUTE_TTL_MARGIN, MINUTE)


def plan(
    window: TimeRange, minute_kept_since: datetime, bucket: Granularity | None = None
) -> list[Segment]:
    """Cover `window` with segments of the coarsest tables that can answer, in time order.

    With `bucket`, only tables at least that fine are used (a per-minute chart cannot read the
    hourly rollup); the window must then be aligned to the bucket.
    """
    if not (is_aligned(window.start, MINUTE) and is_aligned(window.end, MINUTE)):
        raise ValueError(f"plan needs whole minutes, got {window}")
    if bucket is not None and not (
        is_aligned(window.start, bucket.step) and is_aligned(window.end, bucket.step)
    ):
        raise ValueError(f"plan by {bucket} needs whole {bucket}s, got {window}")
    levels = [(Source.DAILY, DAY), (Source.HOURLY, HOUR)]
    if bucket is Granularity.HOUR:
        levels = levels[1:]
    elif bucket is Granularity.MINUTE:
        levels = []
    segments: list[Segment] = []
    pieces = [(window.start, window.end)]
    for source, step in levels:
        rest = []
        for start, end in pieces:
            inner_start, inner_end = ceil(start, step), floor(end, step)
            if inner_start < inner_end:
                segments.append(Segment(source, inner_start, inner_end))
                rest += [(start, inner_start), (inner_end, end)]
            else:
                rest.append((start, end))
        pieces = [(a, b) for a, b in rest if a < b]
    for start, end in pieces:
        segments += _minutes(start, end, minute_kept_since)
    return sorted(segments, key=lambda s: s.start)


def _minutes(start: datetime, end: datetime, kept_since: datetime) -> list[Segment]:
    if start >= kept_since:
        return [Segment(Source.MINUTE, start, end)]
    if end <= kept_since:
        return [Segment(Source.RAW, start, end)]
    return [Segment(Source.RAW, start, kept_since), Segment(Source.MINUTE, kept_since, end)]
