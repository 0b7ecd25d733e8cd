"""Campaign metadata for the campaigns table: the store's whole table, read at most once a TTL.

The table joins every active campaign (thousands) with its name; looking them up in the store
cost ~8 ms per answer. Names change when an operator imports a file, and answers are cached
for the same TTL anyway, so one copy of the table is reused for `ttl_s` after it was read, and
an answer built from it expires when that copy does (`note_data_read_at`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import anyio
import anyio.to_thread

from adpulse.metadata.campaigns import CampaignMeta, every_campaign
from adpulse.metadata.store import MetadataStore
from api.cache import note_data_read_at


class CampaignMetaCache:
    def __init__(
        self, store: MetadataStore, ttl_s: float, *, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._clock = wall_clock
        self._read_at = -float("inf")
        self._table: dict[int, CampaignMeta] = {}
        self._lock = anyio.Lock()

    async def table(self) -> Mapping[int, CampaignMeta]:
        """campaign_id -> metadata, for every campaign the store knows."""
        if self._clock() - self._read_at >= self.ttl_s:
            async with self._lock:  # concurrent answers share one read
                if self._clock() - self._read_at >= self.ttl_s:
                    read_at = self._clock()
                    self._table = await anyio.to_thread.run_sync(every_campaign, self.store)
                    self._read_at = read_at
        note_data_read_at(self._read_at)
        return self._table
