"""Ratios: exact arithmetic, null for a zero denominator. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.queries.derived import ZERO, fill, metrics
from api.queries.ranges import TimeRange


def test_ratios() -> None:
    got = metrics(
        impressions=2000,
        clicks=30,
        conversions=3,
        spend_micros=5_000_000,
        revenue_micros=20_000_000,
    )
    assert (got["ctr"], got["cvr"], got["cpm"], got["cpa"], got["roas"]) == (
        0.015,
        0.1,
        2_500_000.0,
        5_000_000 / 3,
        4.0,
    )


def test_zero_denominators_are_null_not_zero() -> None:
    assert [ZERO[k] for k in ("ctr", "cvr", "cpm", "cpa", "roas")] == [None] * 5
    only_impressions = metrics(10, 0, 0, 0, 0)
    assert only_impressions["ctr"] == 0.0 and only_impressions["cvr"] is None


def test_fill_gives_every_bucket_zeros_included() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    m = timedelta(minutes=1)
    points = fill([(t + m, 5, 1, 0, 10, 0)], TimeRange(t, t + 3 * m), m)
    assert [p[0] for p in points] == [t, t + m, t + 2 * m]
    assert [p[1]["impressions"] for p in points] == [0, 5, 0]
