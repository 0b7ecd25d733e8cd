"""The block store of the rollups held in memory: blocks by key, least recently used dropped
first past `max_bytes`.

Staleness: a block is used for `ttl_s` after it was read, never longer. Concurrent questions
share one read per block (a pending future per key), and blocks still in use are read again
before they expire, in the background (`get`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Protocol

from api.hot.blocks import Array, Block, BlockKey, spans, step
from api.metrics import ApiMetrics

log = logging.getLogger("adpulse.api")


class Reader(Protocol):
    """Where the store's blocks come from (api/hot/reads.py)."""

    async def read(self, label: str, starts: list[int]) -> dict[int, Array]:
        """The arrays of the blocks of `label` from the first to the last of `starts`, every
        one between included, by start. Keeps nothing; may raise."""
        ...

    def block_bytes(self, label: str) -> int:
        """About how many bytes a block of `label` read now would hold."""
        ...


class BlockStore:
    """Blocks by key, read through `reader` when missing or expired, at most `max_bytes` of
    them (one block alone may hold more)."""

    def __init__(
        self,
        reader: Reader,
        metrics: ApiMetrics,
        *,
        ttl_s: float,
        max_bytes: int,
        wall_clock: Callable[[], float],
    ) -> None:
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self._reader = reader
        self._metrics = metrics
        self._clock = wall_clock
        self._blocks: OrderedDict[BlockKey, Block] = OrderedDict()
        self._bytes = 0
        self._pending: dict[BlockKey, asyncio.Future[Block]] = {}
        self._reads: set[asyncio.Task[None]] = set()
        self._background = asyncio.Semaphore(1)

    @property
    def bytes(self) -> int:
        """Bytes held by the blocks' sums (what `max_bytes` bounds)."""
        return self._bytes

    @property
    def blocks(self) -> Mapping[BlockKey, Block]:
        """The blocks held, least recently used first; a read-only view."""
        return MappingProxyType(self._blocks)

    async def get(self, keys: set[BlockKey]) -> dict[BlockKey, Block]:
        """The blocks of `keys`, none older than `ttl_s`: read now if they must be. Raises what
        a read of theirs raised.

        A block past half to nine tenths of its TTL (spread by key, so blocks read together do
        not all age together) is still used, and read again in the background, one read at a
        time, so a steady stream of questions never waits for a read (refresh-ahead)."""
        now = self._clock()
        got: dict[BlockKey, Block] = {}
        waits: dict[BlockKey, asyncio.Future[Block]] = {}
        missing, aging = [], []
        for key in keys:
            block = self._blocks.get(key)
            if block is not None and now - block.read_at < self.ttl_s:
                self._blocks.move_to_end(key)
                got[key] = block
                if now - block.read_at >= self._refresh_age(key) and key not in self._pending:
                    aging.append(key)
            elif key in self._pending:
                waits[key] = self._pending[key]
            else:
                missing.append(key)
        if aging:
            self._start_read(aging, background=True)  # nobody waits for these
        if missing:
            waits.update(self._start_read(missing))
        for key, future in waits.items():
            got[key] = await asyncio.shield(future)
        return got

    async def idle(self) -> None:
        """Return once the reads under way, background ones included, are done."""
        await asyncio.gather(*self._reads)

    def _refresh_age(self, key: BlockKey) -> float:
        return self.ttl_s * (0.5 + (hash(key) % 401) / 1000)

    def _start_read(
        self, keys: list[BlockKey], *, background: bool = False
    ) -> dict[BlockKey, asyncio.Future[Block]]:
        loop = asyncio.get_running_loop()
        futures: dict[BlockKey, asyncio.Future[Block]] = {k: loop.create_future() for k in keys}
        self._pending.update(futures)
        # A task of its own: a caller that disconnects must not cancel others' blocks.
        task = asyncio.create_task(self._read(futures, background))
        self._reads.add(task)
        task.add_done_callback(self._reads.discard)
        return futures

    async def _read(
        self, futures: dict[BlockKey, asyncio.Future[Block]], background: bool = False
    ) -> None:
        by_label: dict[str, list[int]] = {}
        for label, start in futures:
            by_label.setdefault(label, []).append(start)
        reads = [
            self._read_span(label, span, futures)
            for label, starts in by_label.items()
            # A refresh reads just the blocks in use: those between were read once, for what
            # might come, and are not read again unless used.
            for span in spans(
                sorted(starts), step(label), 1 if background else self._span_limit(label)
            )
        ]
        try:
            if background:  # one at a time: reads that questions wait for go first
                async with self._background:
                    await asyncio.gather(*reads)
            else:
                await asyncio.gather(*reads)
        except BaseException as exc:
            if isinstance(exc, Exception):
                log.warning("reading rollup blocks %s failed: %s", sorted(by_label), exc)
            for future in futures.values():
                if not future.done():
                    future.set_exception(exc)
                    future.exception()  # retrieved: a waiter that left must not log it
            if not isinstance(exc, Exception):
                raise
        finally:
            for key, future in futures.items():
                if self._pending.get(key) is future:
                    del self._pending[key]

    async def _read_span(
        self, label: str, starts: list[int], futures: dict[BlockKey, asyncio.Future[Block]]
    ) -> None:
        read_at = self._clock()
        made = await self._reader.read(label, starts)
        self._publish(label, made, read_at, futures)

    def _span_limit(self, label: str) -> int:
        """How many blocks of `label` one read may cover: those asked for and those between.

        A range's two edge hours are a day apart, and the hours between them hold the edges of
        the shorter ranges a dashboard also shows (the last 1, 6, 12 hours) and of this range
        once it moves: read along with the edges while that fits in half the memory (25 hours
        by minute for 2,000 campaigns), they cost one read instead of one each. Past that,
        reads split, and hold only what was asked for."""
        return max(1, self.max_bytes // 2 // self._reader.block_bytes(label))

    def _publish(
        self,
        label: str,
        made: dict[int, Array],
        read_at: float,
        futures: dict[BlockKey, asyncio.Future[Block]],
    ) -> None:
        self._metrics.hot_block_reads.labels(label).inc()
        for start, sums in made.items():
            block = Block.of(label, read_at, sums)
            self._store((label, start), block)
            future = futures.get((label, start))
            if future is not None and not future.done():
                future.set_result(block)

    def _store(self, key: BlockKey, block: Block) -> None:
        old = self._blocks.pop(key, None)
        if old is not None:
            self._bytes -= old.sums.nbytes
        self._blocks[key] = block
        self._bytes += block.sums.nbytes
        while self._bytes > self.max_bytes and len(self._blocks) > 1:
            _, dropped = self._blocks.popitem(last=False)
            self._bytes -= dropped.sums.nbytes
        self._metrics.hot_bytes.set(self._bytes)
