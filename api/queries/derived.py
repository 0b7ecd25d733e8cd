"""Ratios derived from counts and sums. Pure.

A ratio whose denominator is zero is None (JSON null), never 0 or infinity: "no clicks yet"
and "a 0 % conversion rate" are different answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypedDict

from api.queries.ranges import TimeRange


class Metrics(TypedDict):
    impressions: int
    clicks: int
    conversions: int
    spend_micros: int
    revenue_micros: int
    ctr: float | None
    cvr: float | None
    cpm: float | None
    cpa: float | None
    roas: float | None


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


# Each ratio's (numerator, denominator) from the five counts, in COUNTS order.
RATIOS: dict[str, Callable[[int, int, int, int, int], tuple[int, int]]] = {
    "ctr": lambda impressions, clicks, conversions, spend, revenue: (clicks, impressions),
    "cvr": lambda impressions, clicks, conversions, spend, revenue: (conversions, clicks),
    # micros per 1000 impressions
    "cpm": lambda impressions, clicks, conversions, spend, revenue: (spend * 1000, impressions),
    "cpa": lambda impressions, clicks, conversions, spend, revenue: (spend, conversions),
    "roas": lambda impressions, clicks, conversions, spend, revenue: (revenue, spend),
}


def metrics(
    impressions: int, clicks: int, conversions: int, spend_micros: int, revenue_micros: int
) -> Metrics:
    """Counts and sums with ctr, cvr, cpm (micros per 1000 impressions), cpa (micros), roas."""
    counts = (impressions, clicks, conversions, spend_micros, revenue_micros)
    return {
        "impressions": impressions,
        "clicks": clicks,
        "conversions": conversions,
        "spend_micros": spend_micros,
        "revenue_micros": revenue_micros,
        "ctr": ratio(*RATIOS["ctr"](*counts)),
        "cvr": ratio(*RATIOS["cvr"](*counts)),
        "cpm": ratio(*RATIOS["cpm"](*counts)),
        "cpa": ratio(*RATIOS["cpa"](*counts)),
        "roas": ratio(*RATIOS["roas"](*counts)),
    }


def metrics_from_row(row: Sequence[Any]) -> Metrics:
    """`metrics` from the five COUNTS columns of a query row (sums over no rows may be NULL)."""
    values = [int(v or 0) for v in row[:5]]
    return metrics(*values)


ZERO = metrics(0, 0, 0, 0, 0)


def fill(
    rows: Sequence[Sequence[Any]], window: TimeRange, step: timedelta
) -> list[tuple[datetime, Metrics]]:
    """One entry per bucket of `window`: the row for that bucket start, or zeros."""
    found = {row[0]: metrics_from_row(row[1:]) for row in rows}
    points = []
    moment = window.start
    while moment < window.end:
        points.append((moment, found.get(moment, ZERO)))
        moment += step
    return points
