"""Range alignment and limits. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from api.queries.ranges import (
    DAY,
    HOUR,
    MINUTE,
    Granularity,
    RangeError,
    TimeRange,
    ceil,
    checked_range,
    floor,
    widen,
)

T = datetime(2026, 11, 26, 23, 47, 13, 500_000, tzinfo=UTC)


def test_floor_and_ceil() -> None:
    assert floor(T, MINUTE) == datetime(2026, 11, 26, 23, 47, tzinfo=UTC)
    assert ceil(T, MINUTE) == datetime(2026, 11, 26, 23, 48, tzinfo=UTC)
    assert ceil(T, DAY) == datetime(2026, 11, 27, tzinfo=UTC)
    aligned = datetime(2026, 11, 27, tzinfo=UTC)
    assert floor(aligned, HOUR) == ceil(aligned, HOUR) == aligned


def test_widen_covers_the_request_with_whole_buckets() -> None:
    assert widen(T, T + timedelta(seconds=1), HOUR) == TimeRange(
        datetime(2026, 11, 26, 23, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC)
    )


def test_equal_questions_seconds_apart_share_a_range() -> None:
    a = checked_range(T, T + HOUR, MINUTE, DAY)
    b = checked_range(T + timedelta(seconds=20), T + HOUR + timedelta(seconds=20), MINUTE, DAY)
    assert a == b


def test_offsets_become_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    got = checked_range(datetime(2026, 1, 1, 2, tzinfo=plus_two), T, MINUTE, 1000 * DAY)
    assert got.start == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "param", "message"),
    [
        (T, T, "to", "must be after from"),
        (T, T - MINUTE, "to", "must be after from"),
        (T, T + 2 * DAY, "to", "spans 2 days; at most 1 day here"),
        (T.replace(tzinfo=None), T, "from", "needs a UTC offset"),
        (datetime(1960, 1, 1, tzinfo=UTC), T, "from", "outside 1970-01-01..2100-01-01"),
        (T, datetime(2200, 1, 1, tzinfo=UTC), "to", "outside 1970-01-01..2100-01-01"),
    ],
)
def test_bad_ranges_name_the_parameter(
    start: datetime, end: datetime, param: str, message: str
) -> None:
    with pytest.raises(RangeError, match=message) as caught:
        checked_range(start, end, MINUTE, DAY)
    assert caught.value.param == param


def test_granularity_limits_keep_answers_under_1500_points() -> None:
    for granularity in Granularity:
        assert granularity.max_range / granularity.step + 1 <= 1500
    assert Granularity.MINUTE.max_range == DAY


def test_previous_period_has_the_same_length_and_ends_at_start() -> None:
    window = TimeRange(T, T + 3 * HOUR)
    assert window.previous() == TimeRange(T - 3 * HOUR, T)
