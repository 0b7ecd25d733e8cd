"""The answers of the rollups held in memory: what the SQL path would return, from blocks.

An answer is cached only until its oldest block's time is up (`api.cache.note_data_read_at`),
so answers are never staler than the answer cache alone allows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from adpulse.clickhouse.client import Row
from api.cache import note_data_read_at
from api.hot.arrays import (
    EVERYONE,
    Who,
    as_row,
    buckets,
    campaign_sums,
    piece_sums,
    total,
    value_sums,
)
from api.hot.blocks import BY, Array, Block, BlockKey, Piece, Slots, covers, epoch, pieces
from api.hot.reads import BlockReader
from api.hot.store import BlockStore
from api.queries import sql
from api.queries.plan import Segment
from api.queries.ranges import Granularity, TimeRange
from api.runner import QueryRunner


class HotRollups:
    """Answers questions about the last `horizon` from blocks held in memory, or None: then
    ClickHouse answers."""

    def __init__(
        self,
        database: str,
        runner: QueryRunner,
        *,
        horizon: timedelta,
        ttl_s: float,
        max_bytes: int,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self.horizon = horizon
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self.slots: Slots[int] = Slots()
        self.values: dict[sql.Dimension, Slots[str]] = {}
        reader = BlockReader(database, runner, self.slots, self.values)
        self.store = BlockStore(
            reader, runner.metrics, ttl_s=ttl_s, max_bytes=max_bytes, wall_clock=wall_clock
        )

    def pieces(self, segments: Sequence[Segment], now: datetime) -> list[Piece] | None:
        """The blocks covering `segments`, or None when this cache should not answer them."""
        return pieces(segments, now, self.horizon)

    async def totals(
        self,
        segments: Sequence[Segment],
        now: datetime,
        *,
        group: sql.GroupBy = None,
        campaign_id: int | None = None,
    ) -> list[Row] | None:
        """What `sql.totals` would return for these segments, or None (ask ClickHouse)."""
        found = self.pieces(segments, now)
        if found is None:
            return None
        blocks = await self._blocks({p.key for p in found})
        if group == "campaign_id" and campaign_id is None:
            ids, sums = campaign_sums(found, blocks, self.slots)
            return [(i, *counts) for i, counts in zip(ids.tolist(), sums.tolist(), strict=True)]
        slot = None if campaign_id is None else self.slots.get(campaign_id)
        who: Who = EVERYONE if campaign_id is None else slot
        parts = [] if who is None else [(p, piece_sums(blocks[p.key], p, who)) for p in found]
        if group is None:
            return [as_row(total(parts))]
        if isinstance(group, sql.SplitAt):
            at = epoch(group.at)
            return [
                (key, *as_row(total([(p, v) for p, v in parts if (p.lo >= at) == key])))
                for key in (0, 1)
            ]
        if isinstance(group, Granularity):
            return buckets(parts, blocks, EVERYONE if who is None else who, group)
        if group == "campaign_id":  # and one campaign
            summed = total(parts)
            return [(campaign_id, *as_row(summed))] if summed[:3].any() else []
        raise ValueError(f"unknown grouping {group!r}")

    async def per_campaign(
        self, segments: Sequence[Segment], now: datetime
    ) -> tuple[Array, Array] | None:
        """Campaigns with events in `segments`, by id: (ids, (campaigns x 5) sums) as arrays,
        for the campaigns table to sort without a Python object per campaign; or None."""
        found = self.pieces(segments, now)
        if found is None:
            return None
        blocks = await self._blocks({p.key for p in found})
        return campaign_sums(found, blocks, self.slots)

    async def breakdown(
        self,
        window: TimeRange,
        by: sql.Dimension,
        now: datetime,
        *,
        campaign_id: int | None,
        limit: int,
    ) -> list[Row] | None:
        """What `sql.breakdown` would return for whole hours, or None (ask ClickHouse)."""
        if by is sql.Dimension.PUBLISHER_ID or not covers(
            window.start, window.end, now, self.horizon
        ):
            return None
        label = BY + by.value
        blocks = await self._blocks(
            {(label, t) for t in range(epoch(window.start), epoch(window.end), 3600)}
        )
        names = self.values.get(by, Slots())
        who: Who = EVERYONE if campaign_id is None else self.slots.get(campaign_id)
        acc = value_sums(blocks.values(), len(names), who)
        found = [
            (names.ids[i], counts)
            for i, counts in enumerate(acc.tolist())
            if counts[0] or counts[1] or counts[2]
        ]
        # As the SQL orders them: most impressions first, then by value (byte order).
        found.sort(key=lambda row: (-row[1][0], row[0].encode()))
        return [(value, *counts, len(found)) for value, counts in found[:limit]]

    async def _blocks(self, keys: set[BlockKey]) -> dict[BlockKey, Block]:
        blocks = await self.store.get(keys)
        note_data_read_at(min(b.read_at for b in blocks.values()))
        return blocks
