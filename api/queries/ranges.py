"""Time ranges: alignment to buckets and the limits per answer. Pure.

Every range is half-open, [start, end), in UTC. Requests are widened to whole buckets (start
rounds down, end rounds up) so that equal questions asked seconds apart share a cache key and
every bucket a chart draws is complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# ClickHouse DateTime ends in 2106; keep a margin so rounding up and `previous` stay inside.
LATEST = datetime(2100, 1, 1, tzinfo=UTC)

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

MAX_POINTS = 1500
MAX_RANGE = timedelta(days=732)  # the hourly and daily rollups keep 730 days
MAX_BREAKDOWN_RANGE = timedelta(days=92)  # raw events (publisher x campaign) keep 90 days


class Granularity(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"

    @property
    def step(self) -> timedelta:
        return _STEPS[self]

    @property
    def max_range(self) -> timedelta:
        """The longest range with at most MAX_POINTS buckets (minute: 1 day, hour: 62 days)."""
        return _MAX_RANGES[self]


_STEPS = {Granularity.MINUTE: MINUTE, Granularity.HOUR: HOUR, Granularity.DAY: DAY}
_MAX_RANGES = {
    Granularity.MINUTE: DAY,
    Granularity.HOUR: timedelta(days=62),
    Granularity.DAY: MAX_RANGE,
}


class RangeError(ValueError):
    """A range parameter is unusable; `param` is the query parameter to blame."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, order=True)
class TimeRange:
    """[start, end) in UTC."""

    start: datetime
    end: datetime

    @property
    def span(self) -> timedelta:
        return self.end - self.start

    def previous(self) -> TimeRange:
        """The period of the same length that ends where this one starts."""
        return TimeRange(self.start - self.span, self.start)


def floor(moment: datetime, step: timedelta) -> datetime:
    return EPOCH + (moment - EPOCH) // step * step


def ceil(moment: datetime, step: timedelta) -> datetime:
    return EPOCH - (EPOCH - moment) // step * step


def is_aligned(moment: datetime, step: timedelta) -> bool:
    return floor(moment, step) == moment


def widen(start: datetime, end: datetime, step: timedelta) -> TimeRange:
    """The smallest range of whole `step` buckets that covers [start, end)."""
    return TimeRange(floor(start, step), ceil(end, step))


def checked_range(start: datetime, end: datetime, step: timedelta, limit: timedelta) -> TimeRange:
    """Validate a requested [start, end) and widen it to whole buckets of `step`.

    Raises RangeError naming `from` or `to`: naive times, times outside 1970..2100,
    from >= to, and ranges longer than `limit`.
    """
    for param, moment in (("from", start), ("to", end)):
        if moment.tzinfo is None:
            raise RangeError(param, f"{param} needs a UTC offset, e.g. 2026-01-31T00:00:00Z")
        if not EPOCH <= moment <= LATEST:
            raise RangeError(
                param, f"{param}={moment.isoformat()} is outside 1970-01-01..2100-01-01"
            )
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if start >= end:
        raise RangeError(
            "to",
            f"to={end.isoformat()} must be after from={start.isoformat()}: ranges are [from, to)",
        )
    if end - start > limit:
        raise RangeError(
            "to",
            f"from..to spans {_days(end - start)}; at most {_days(limit)} here: narrow the range"
            " or use a coarser granularity",
        )
    return widen(start, end, step)


def _days(span: timedelta) -> str:
    if span >= DAY:
        days = round(span / DAY, 2)
        return f"{days:g} day" + ("" if days == 1 else "s")
    hours = round(span / HOUR, 2)
    return f"{hours:g} hour" + ("" if hours == 1 else "s")
