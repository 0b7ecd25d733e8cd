"""The block store (api/hot/store.py) over real reads: past `max_bytes` the least recently
used blocks go first, and what it holds is what its metrics say."""

from __future__ import annotations

import asyncio

from api.hot.blocks import Slots, epoch
from api.hot.reads import BlockReader
from api.hot.store import BlockStore
from api.metrics import ApiMetrics
from api.queries.ranges import HOUR, floor
from api.runner import QueryRunner
from tests.api.conftest import Seeded


def store_of(reader: BlockReader, max_bytes: int) -> tuple[BlockStore, ApiMetrics]:
    metrics = ApiMetrics()
    store = BlockStore(reader, metrics, ttl_s=60, max_bytes=max_bytes, wall_clock=lambda: 1e6)
    return store, metrics


def use(store: BlockStore, *starts: int) -> None:
    """Ask for one hourly block at a time, in this order."""

    async def asks() -> None:
        for start in starts:
            await store.get({("hourly", start)})

    asyncio.run(asks())


def test_past_max_bytes_the_least_recently_used_blocks_go_first(
    seeded: Seeded, runner: QueryRunner
) -> None:
    reader = BlockReader(seeded.client.database, runner, Slots(), {})
    h0, h1, h2 = (epoch(floor(seeded.now, HOUR)) - back * 3600 for back in (6, 5, 4))
    # Every campaign seen first, so the store's reads make blocks of these very sizes.
    size = {h: asyncio.run(reader.read("hourly", [h]))[h].nbytes for h in (h0, h1, h2)}
    store, metrics = store_of(reader, max_bytes=size[h0] + max(size[h1], size[h2]))
    use(store, h0, h1, h0, h2)  # h0 used again: h1 is now the least recently used
    assert list(store.blocks) == [("hourly", h0), ("hourly", h2)]
    assert store.bytes == size[h0] + size[h2]
    assert metrics.registry.get_sample_value("adpulse_api_hot_bytes") == store.bytes
    reads = {"table": "hourly"}
    assert metrics.registry.get_sample_value("adpulse_api_hot_block_reads_total", reads) == 3


def test_a_block_bigger_than_max_bytes_is_kept_alone(seeded: Seeded, runner: QueryRunner) -> None:
    reader = BlockReader(seeded.client.database, runner, Slots(), {})
    h0, h1 = (epoch(floor(seeded.now, HOUR)) - back * 3600 for back in (3, 2))
    store, _ = store_of(reader, max_bytes=1)
    use(store, h0, h1)
    assert list(store.blocks) == [("hourly", h1)]
    assert store.bytes == store.blocks[("hourly", h1)].sums.nbytes > 1
