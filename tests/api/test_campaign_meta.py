"""Campaign names for the campaigns table come from one copy of the store's table per TTL."""

from __future__ import annotations

import asyncio

from adpulse.metadata.campaigns import CampaignMeta, upsert
from adpulse.metadata.store import MetadataStore
from api.cache import MemoryBackend, ResponseCache
from api.campaign_meta import CampaignMetaCache
from api.metrics import ApiMetrics


def test_an_import_shows_once_the_copy_expires_and_answers_expire_with_it(
    store: MetadataStore,
) -> None:
    now = [100.0]
    names = CampaignMetaCache(store, ttl_s=60, wall_clock=lambda: now[0])
    cache = ResponseCache(MemoryBackend(), ApiMetrics(), lock_ttl_s=5, wall_clock=lambda: now[0])

    async def name_of_1() -> bytes:
        return (await names.table())[1].name.encode()

    async def ask(key: str) -> bytes:
        return (await cache.fetch(key, 60, name_of_1, endpoint="t"))[0]

    assert asyncio.run(ask("a")) == b"Campaign 01"
    upsert(store, [CampaignMeta(1, "Renamed", "Advertiser 1")])
    now[0] += 30
    assert asyncio.run(ask("b")) == b"Campaign 01"  # a new answer from the 30 s old copy
    now[0] += 31  # 61 s after the copy was read: the answer "b" expired with it
    assert asyncio.run(ask("b")) == b"Renamed"
    assert len(asyncio.run(names.table())) == 20
