"""Which table answers which piece of a range. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from api.queries.plan import Segment, Source, minute_rollup_floor, plan
from api.queries.ranges import Granularity, TimeRange

D, H, M = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)
MIDNIGHT = datetime(2026, 11, 27, tzinfo=UTC)
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)  # minute rollup kept since: everything is recent


def covers(segments: list[Segment], window: TimeRange) -> bool:
    edges = [(s.start, s.end) for s in segments]
    return (
        edges[0][0] == window.start
        and edges[-1][1] == window.end
        and all(a[1] == b[0] for a, b in pairwise(edges))
    )


def test_days_then_hours_then_minutes() -> None:
    window = TimeRange(MIDNIGHT - D - 2 * H - 13 * M, MIDNIGHT + D + H + 7 * M)
    got = plan(window, LONG_AGO)
    assert got == [
        Segment(Source.MINUTE, window.start, MIDNIGHT - D - 2 * H),
        Segment(Source.HOURLY, MIDNIGHT - D - 2 * H, MIDNIGHT - D),
        Segment(Source.DAILY, MIDNIGHT - D, MIDNIGHT + D),
        Segment(Source.HOURLY, MIDNIGHT + D, MIDNIGHT + D + H),
        Segment(Source.MINUTE, MIDNIGHT + D + H, window.end),
    ]


def test_crossing_midnight_without_a_whole_day_uses_hours() -> None:
    window = TimeRange(MIDNIGHT - 47 * M, MIDNIGHT + H + 2 * M)
    assert [s.source for s in plan(window, LONG_AGO)] == [
        Source.MINUTE,
        Source.HOURLY,
        Source.MINUTE,
    ]


def test_minutes_older_than_the_minute_ttl_come_from_raw_events() -> None:
    window = TimeRange(MIDNIGHT - 30 * M, MIDNIGHT + 30 * M)
    got = plan(window, kept_since := MIDNIGHT + 10 * M)
    assert got == [
        Segment(Source.RAW, window.start, kept_since),
        Segment(Source.MINUTE, kept_since, window.end),
    ]


def test_minute_rollup_floor_keeps_a_margin_inside_the_ttl() -> None:
    now = datetime(2026, 11, 27, 12, 0, 30, tzinfo=UTC)
    assert minute_rollup_floor(now, 2 * D) == datetime(2026, 11, 25, 12, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("bucket", "sources"),
    [
        (Granularity.MINUTE, {Source.MINUTE}),
        (Granularity.HOUR, {Source.HOURLY}),
        (Granularity.DAY, {Source.DAILY}),
    ],
)
def test_a_bucketed_plan_never_reads_a_coarser_table(
    bucket: Granularity, sources: set[Source]
) -> None:
    window = TimeRange(MIDNIGHT - D, MIDNIGHT + D)
    got = plan(window, LONG_AGO, bucket)
    assert {s.source for s in got} == sources and covers(got, window)


def test_unaligned_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="whole minutes"):
        plan(TimeRange(MIDNIGHT + timedelta(seconds=1), MIDNIGHT + H), LONG_AGO)
    with pytest.raises(ValueError, match="whole hours"):
        plan(TimeRange(MIDNIGHT + M, MIDNIGHT + H), LONG_AGO, Granularity.HOUR)


@pytest.mark.parametrize("minutes", [1, 59, 61, 24 * 60 - 1, 24 * 60 + 1, 3 * 24 * 60 + 17])
@pytest.mark.parametrize("offset", [0, 1, 59, 60 * 23 + 59])
def test_every_plan_covers_its_window_exactly_once(minutes: int, offset: int) -> None:
    window = TimeRange(MIDNIGHT + offset * M, MIDNIGHT + (offset + minutes) * M)
    for kept_since in (LONG_AGO, MIDNIGHT + 2 * H, MIDNIGHT + 10 * D):
        assert covers(plan(window, kept_since), window)
