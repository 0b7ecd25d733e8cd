"""Counts and sums over a time range from the cheapest place that can answer: the rollups held
in memory (api.hot), else ClickHouse, reading the coarsest tables that cover the range."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from adpulse.clickhouse.client import Row
from api.hot import HotRollups
from api.metrics import ApiMetrics
from api.queries import sql
from api.queries.plan import Segment, minute_rollup_floor, plan
from api.queries.ranges import Granularity, TimeRange
from api.runner import QueryRunner

CampaignIds = np.ndarray[tuple[int], np.dtype[np.int64]]
CampaignSums = np.ndarray[tuple[int, int], np.dtype[np.int64]]


@dataclass(frozen=True)
class Counts:
    """`hot` is None when the API holds no rollups in memory: then ClickHouse answers all."""

    database: str
    runner: QueryRunner
    metrics: ApiMetrics
    clock: Callable[[], datetime]
    minute_retention: timedelta  # how long the minute rollup keeps rows (live_retention_days)
    hot: HotRollups | None = None

    async def totals(
        self,
        window: TimeRange,
        *,
        endpoint: str,
        group: sql.GroupBy = None,
        campaign_id: int | None = None,
        hot: bool = True,
    ) -> list[Row]:
        """Counts and sums over `window` from the coarsest tables that can answer.

        `hot=False`: never from the rollups held in memory (they may be a history TTL old).
        """
        bucket = group if isinstance(group, Granularity) else None
        segments = plan(window, self._minutes_kept_since(), bucket)
        return await self._totals(segments, endpoint, group, campaign_id, hot)

    async def _totals(
        self,
        segments: list[Segment],
        endpoint: str,
        group: sql.GroupBy,
        campaign_id: int | None,
        hot: bool,
    ) -> list[Row]:
        if hot and self.hot is not None:
            now = self.clock()
            rows = await self.hot.totals(segments, now, group=group, campaign_id=campaign_id)
            self._count_hot("totals", rows is not None)
            if rows is not None:
                return rows
        query = sql.totals(self.database, segments, group=group, campaign_id=campaign_id)
        return await self.runner.rows(query, endpoint=endpoint)

    async def campaign_totals(
        self, window: TimeRange, *, endpoint: str
    ) -> tuple[CampaignIds, CampaignSums]:
        """Campaigns with events in `window`: ids ascending, and their (campaigns x 5) sums."""
        segments = plan(window, self._minutes_kept_since())
        if self.hot is not None:
            found = await self.hot.per_campaign(segments, self.clock())
            self._count_hot("campaigns", found is not None)
            if found is not None:
                return found
        rows = await self._totals(segments, endpoint, "campaign_id", None, hot=False)
        ids = np.asarray([row[0] for row in rows], dtype=np.int64)
        sums = np.asarray([row[1:] for row in rows], dtype=np.int64)
        return ids, sums.reshape(len(rows), len(sql.COUNTS))

    async def two_periods(
        self, window: TimeRange, before: TimeRange, *, endpoint: str, campaign_id: int | None
    ) -> tuple[Row, Row]:
        """Counts and sums of `window` and of `before` (which ends where it starts), in one
        query: one round trip instead of two, and each table read once."""
        kept = self._minutes_kept_since()
        segments = plan(window, kept) + plan(before, kept)
        split = sql.SplitAt(window.start)
        rows = await self._totals(segments, endpoint, split, campaign_id, hot=True)
        found = {row[0]: row[1:] for row in rows}
        nothing = (0,) * len(sql.COUNTS)
        return found.get(1, nothing), found.get(0, nothing)

    async def breakdown(
        self, window: TimeRange, by: sql.Dimension, *, campaign_id: int | None, limit: int
    ) -> list[Row]:
        """Rows of `sql.breakdown` for whole hours: (value, *COUNTS, number of values)."""
        if self.hot is not None:
            rows = await self.hot.breakdown(
                window, by, self.clock(), campaign_id=campaign_id, limit=limit
            )
            self._count_hot("breakdown", rows is not None)
            if rows is not None:
                return rows
        query = sql.breakdown(self.database, window, by, campaign_id=campaign_id, limit=limit)
        return await self.runner.rows(query, endpoint="breakdown")

    def _count_hot(self, kind: str, answered: bool) -> None:
        self.metrics.hot_answers.labels(kind, "memory" if answered else "clickhouse").inc()

    def _minutes_kept_since(self) -> datetime:
        return minute_rollup_floor(self.clock(), self.minute_retention)
