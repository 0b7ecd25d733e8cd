"""The last days' rollups, every campaign's sums per hour, held in this process.

Why: on chDB a table read costs ~5 ms of CPU however few rows it returns, a dashboard question
reads one to three tables, and 32 dashboards at once queued on two cores (miss P95 0.5 s). Yet
questions about the last days share nearly all their data: "the last 24 h" asked a minute
later differs only in its two edge minutes, and every campaign's drill-down reads the same
hours. So recent blocks are read once for all campaigns, and questions are answered by adding
arrays:

- a whole hour (`campaign_hourly`) or day (`campaign_daily`): one (campaigns x 5) array;
- an hour at minute resolution (`events_per_minute`, or raw events past that rollup's TTL):
  (61 x campaigns x 5) sums cumulative over its minutes, so any minute edge is one subtraction.
- an hour of a country or device-type breakdown (`breakdown_hourly`): (campaigns x values x 5).

A question is answered here only when its segments (api/queries/plan.py, the same plan the SQL
path uses) all start within `horizon` of now, end before the next hour, and need few
minute-resolution hours; anything else goes to ClickHouse as before.

Costs: a block by minute is ~5 MB and ~30 ms to read for 2,000 campaigns; a whole hour 80 KB.
The dearest is an hour of raw events (the start of a "previous" period past the minute
rollup's TTL): every event of the hour grouped per minute, ~0.9 s on one chDB thread at 8M
events an hour, once per `ttl_s` instead of a raw scan for every question that needs it.

Staleness: a block is used for `ttl_s` after it was read, and an answer built from it is
cached only until its oldest block's time is up (`api.cache.note_data_read_at`), so answers are
never staler than the answer cache alone allows. Concurrent questions share one read per block,
and blocks still in use are read again before they expire (`_ensure`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import numpy as np

from adpulse.clickhouse.client import Row
from api.cache import note_data_read_at
from api.queries import sql
from api.queries.plan import Segment, Source
from api.queries.ranges import DAY, EPOCH, HOUR, Granularity, TimeRange, ceil, floor
from api.runner import QueryRunner

log = logging.getLogger("adpulse.api")
WIDTH = len(sql.COUNTS)
# Per question: the four edges of a period and the one before it, and a raw/minute split.
MAX_MINUTE_HOURS = 6
DENSE_IDS = 1 << 22  # campaign ids below this map through an array (32 MiB at most)
_WHOLE_STEP = {Source.DAILY: DAY, Source.HOURLY: HOUR}  # other sources: hours by minute
_BY = "by:"  # breakdown blocks: "by:country"

# What a block holds (a Source, or "by:country" and "by:device_type" for breakdowns) and
# its start in epoch seconds.
BlockKey = tuple[str, int]
Array = np.ndarray[Any, Any]
T = TypeVar("T", int, str)


def _epoch(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds())


def _moment(seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class _Block:
    read_at: float  # wall-clock seconds
    # (campaigns, 5); (61, campaigns, 5) by minute; (campaigns, values, 5) for a breakdown
    sums: np.ndarray[Any, np.dtype[np.int64]]
    # The same summed over campaigns: (5,), (61, 5) or (values, 5); most questions want these.
    everyone: np.ndarray[Any, np.dtype[np.int64]]

    @classmethod
    def of(cls, label: str, read_at: float, sums: Array) -> _Block:
        by_minute = label in (Source.MINUTE, Source.RAW)  # campaigns are the second axis
        return cls(read_at, sums, sums.sum(axis=1 if by_minute else 0))


@dataclass(frozen=True, slots=True)
class _Piece:
    """[lo, hi) of one block, in epoch seconds."""

    key: BlockKey
    lo: int
    hi: int


Parts = list[tuple[_Piece, Array]]  # each piece and its sums
EVERYONE, EACH = "everyone", "each"  # all campaigns summed, or every campaign apart
Who = int | str | None  # a campaign's slot, EVERYONE, EACH, or None: a campaign never seen


class Slots(Generic[T]):
    """A campaign id (or a breakdown value) -> its index in every block. Never dropped: there
    are thousands of campaigns and dozens of values."""

    def __init__(self) -> None:
        self.ids: list[T] = []
        self._slot: dict[T, int] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def get(self, name: T) -> int | None:
        return self._slot.get(name)

    def of(self, names: Iterable[T]) -> np.ndarray[Any, np.dtype[np.intp]]:
        slot = self._slot
        out = []
        for name in names:
            found = slot.get(name)
            if found is None:
                found = slot[name] = len(self.ids)
                self.ids.append(name)
            out.append(found)
        return np.asarray(out, dtype=np.intp)


class HotRollups:
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
        self._runner = runner
        self._clock = wall_clock
        self._blocks: OrderedDict[BlockKey, _Block] = OrderedDict()
        self._bytes = 0
        self._pending: dict[BlockKey, asyncio.Future[_Block]] = {}
        self._reads: set[asyncio.Task[None]] = set()
        self._background = asyncio.Semaphore(1)
        self._dense = np.full(0, -1, dtype=np.intp)  # campaign id -> slot, see _slots_of

    # --- which questions ------------------------------------------------------------------

    def _covers(self, start: datetime, end: datetime, now: datetime) -> bool:
        """[start, end) lies within `horizon` of now and ends before the next hour does."""
        return start >= now - self.horizon and end <= ceil(now, HOUR) + HOUR

    def pieces(self, segments: Sequence[Segment], now: datetime) -> list[_Piece] | None:
        """The blocks covering `segments`, or None when this cache should not answer them."""
        if not all(self._covers(s.start, s.end, now) for s in segments):
            return None
        pieces: list[_Piece] = []
        for segment in segments:
            lo, hi = _epoch(segment.start), _epoch(segment.end)
            step = _WHOLE_STEP.get(segment.source)
            if step is not None:  # plan() hands these over aligned to their step
                size = int(step.total_seconds())
                pieces += [_Piece((segment.source, t), t, t + size) for t in range(lo, hi, size)]
                continue
            hour = _epoch(floor(segment.start, HOUR))
            while hour < hi:
                pieces.append(_Piece((segment.source, hour), max(lo, hour), min(hi, hour + 3600)))
                hour += 3600
        by_minute = {p.key for p in pieces if p.key[0] not in _WHOLE_STEP}
        return pieces if len(by_minute) <= MAX_MINUTE_HOURS else None

    # --- answers --------------------------------------------------------------------------

    async def totals(
        self,
        segments: Sequence[Segment],
        now: datetime,
        *,
        group: sql.GroupBy = None,
        campaign_id: int | None = None,
    ) -> list[Row] | None:
        """What `sql.totals` would return for these segments, or None (ask ClickHouse)."""
        pieces = self.pieces(segments, now)
        if pieces is None:
            return None
        blocks = await self._ensure({p.key for p in pieces})
        note_data_read_at(min(b.read_at for b in blocks.values()))
        if group == "campaign_id" and campaign_id is None:
            ids, sums = self._per_campaign(pieces, blocks)
            return [(i, *counts) for i, counts in zip(ids.tolist(), sums.tolist(), strict=True)]
        slot = None if campaign_id is None else self.slots.get(campaign_id)
        who: Who = EVERYONE if campaign_id is None else slot
        parts = [] if who is None else [(p, _sums(blocks[p.key], p, who)) for p in pieces]
        if group is None:
            return [_row(_total(parts))]
        if isinstance(group, sql.SplitAt):
            at = _epoch(group.at)
            return [
                (key, *_row(_total([(p, v) for p, v in parts if (p.lo >= at) == key])))
                for key in (0, 1)
            ]
        if isinstance(group, Granularity):
            return self._buckets(parts, blocks, EVERYONE if who is None else who, group)
        if group == "campaign_id":  # and one campaign
            total = _total(parts)
            return [(campaign_id, *_row(total))] if total[:3].any() else []
        raise ValueError(f"unknown grouping {group!r}")

    async def per_campaign(
        self, segments: Sequence[Segment], now: datetime
    ) -> tuple[Array, Array] | None:
        """Campaigns with events in `segments`, by id: (ids, (campaigns x 5) sums) as arrays,
        for the campaigns table to sort without a Python object per campaign; or None."""
        pieces = self.pieces(segments, now)
        if pieces is None:
            return None
        blocks = await self._ensure({p.key for p in pieces})
        note_data_read_at(min(b.read_at for b in blocks.values()))
        return self._per_campaign(pieces, blocks)

    def _per_campaign(
        self, pieces: list[_Piece], blocks: dict[BlockKey, _Block]
    ) -> tuple[Array, Array]:
        acc = np.zeros((len(self.slots), WIDTH), dtype=np.int64)
        for piece in pieces:
            sums = _sums(blocks[piece.key], piece, EACH)
            acc[: len(sums)] += sums
        active = np.flatnonzero(acc[:, :3].any(axis=1))
        ids = np.asarray(self.slots.ids, dtype=np.int64)[active]
        order = np.argsort(ids, kind="stable")
        return ids[order], acc[active][order]

    def _buckets(
        self,
        parts: Parts,
        blocks: dict[BlockKey, _Block],
        who: int | str,
        granularity: Granularity,
    ) -> list[Row]:
        step = int(granularity.step.total_seconds())
        found: dict[int, Array] = {}
        for piece, sums in parts:
            if granularity is Granularity.MINUTE and piece.key[0] not in _WHOLE_STEP:
                for lo in range(piece.lo, piece.hi, 60):
                    minute = _Piece(piece.key, lo, lo + 60)
                    _add(found, lo, _sums(blocks[piece.key], minute, who))
            else:
                _add(found, piece.lo - piece.lo % step, sums)
        return [(_moment(t), *_row(v)) for t, v in sorted(found.items()) if v[:3].any()]

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
        if by is sql.Dimension.PUBLISHER_ID or not self._covers(window.start, window.end, now):
            return None
        label = _BY + by.value
        keys = {(label, t) for t in range(_epoch(window.start), _epoch(window.end), 3600)}
        blocks = await self._ensure(keys)
        note_data_read_at(min(b.read_at for b in blocks.values()))
        names = self.values.get(by, Slots())
        slot = None if campaign_id is None else self.slots.get(campaign_id)
        acc = np.zeros((len(names), WIDTH), dtype=np.int64)
        if campaign_id is None or slot is not None:
            for block in blocks.values():
                if slot is None:
                    acc[: len(block.everyone)] += block.everyone
                elif slot < len(block.sums):
                    acc[: block.sums.shape[1]] += block.sums[slot]
        found = [
            (names.ids[i], counts)
            for i, counts in enumerate(acc.tolist())
            if counts[0] or counts[1] or counts[2]
        ]
        # As the SQL orders them: most impressions first, then by value (byte order).
        found.sort(key=lambda row: (-row[1][0], row[0].encode()))
        return [(value, *counts, len(found)) for value, counts in found[:limit]]

    # --- blocks ---------------------------------------------------------------------------

    async def _ensure(self, keys: set[BlockKey]) -> dict[BlockKey, _Block]:
        """The blocks of `keys`, none older than `ttl_s`: read now if they must be.

        A block past half to nine tenths of its TTL (spread by key, so blocks read together do
        not all age together) is still used, and read again in the background, one read at a
        time, so a steady stream of questions never waits for a read (refresh-ahead)."""
        now = self._clock()
        got: dict[BlockKey, _Block] = {}
        waits: dict[BlockKey, asyncio.Future[_Block]] = {}
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

    def _refresh_age(self, key: BlockKey) -> float:
        return self.ttl_s * (0.5 + (hash(key) % 401) / 1000)

    def _start_read(
        self, keys: list[BlockKey], *, background: bool = False
    ) -> dict[BlockKey, asyncio.Future[_Block]]:
        loop = asyncio.get_running_loop()
        futures: dict[BlockKey, asyncio.Future[_Block]] = {k: loop.create_future() for k in keys}
        self._pending.update(futures)
        # A task of its own: a caller that disconnects must not cancel others' blocks.
        task = asyncio.create_task(self._read(futures, background))
        self._reads.add(task)
        task.add_done_callback(self._reads.discard)
        return futures

    async def _read(
        self, futures: dict[BlockKey, asyncio.Future[_Block]], background: bool = False
    ) -> None:
        by_label: dict[str, list[int]] = {}
        for label, start in futures:
            by_label.setdefault(label, []).append(start)
        reads = [
            self._read_breakdown(sql.Dimension(label.removeprefix(_BY)), span, futures)
            if label.startswith(_BY)
            else self._read_source(Source(label), span, futures)
            for label, starts in by_label.items()
            # A refresh reads just the blocks in use: those between were read once, for what
            # might come, and are not read again unless used.
            for span in _spans(
                sorted(starts), _step(label), 1 if background else self._span_limit(label)
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

    async def _read_source(
        self, source: Source, starts: list[int], futures: dict[BlockKey, asyncio.Future[_Block]]
    ) -> None:
        """One query for the blocks of `source` from the first to the last of `starts`."""
        whole = source in _WHOLE_STEP
        step = int(_WHOLE_STEP.get(source, HOUR).total_seconds())
        first, end = min(starts), max(starts) + step
        read_at = self._clock()
        window = TimeRange(_moment(first), _moment(end))
        query = sql.campaign_blocks(self.database, source, window)
        rows = await self._runner.matrix(query, endpoint="hot")
        t, slots, sums = rows[:, 0], self._slots_of(rows[:, 1]), rows[:, 2:]
        block = (t - first) // step
        made: dict[int, Array] = {}
        for index in range(len(range(first, end, step))):
            mine = block == index
            width = int(slots[mine].max(initial=-1)) + 1  # campaigns past it read as zeros
            if whole:
                made[first + index * step] = array = np.zeros((width, WIDTH), dtype=np.int64)
                _scatter_add(array, (slots[mine],), sums[mine])
            else:
                made[first + index * step] = array = np.zeros((61, width, WIDTH), dtype=np.int64)
                minutes = (t[mine] - first) % step // 60 + 1
                _scatter_add(array, (minutes, slots[mine]), sums[mine])
                np.cumsum(array, axis=0, out=array)
        self._publish(source, made, read_at, futures)

    async def _read_breakdown(
        self,
        by: sql.Dimension,
        starts: list[int],
        futures: dict[BlockKey, asyncio.Future[_Block]],
    ) -> None:
        """One query for the hours of breakdown `by` from the first to the last of `starts`."""
        first, end = min(starts), max(starts) + 3600
        window = TimeRange(_moment(first), _moment(end))
        values = self.values.setdefault(by, Slots())
        read_at = self._clock()
        for _ in range(3):
            query = sql.breakdown_blocks(self.database, by, window, values.ids)
            rows = await self._runner.matrix(query, endpoint="hot")
            if not len(rows) or rows[:, 2].min() > 0:
                break
            # A value not seen before (index 0): learn the values, and read again.
            found = await self._runner.rows(
                sql.breakdown_values(self.database, by, window), endpoint="hot"
            )
            values.of(str(value) for (value,) in found)
        else:
            raise RuntimeError(f"the values of {by} kept changing while read; try again")
        t, slots, names, sums = rows[:, 0], self._slots_of(rows[:, 1]), rows[:, 2] - 1, rows[:, 3:]
        made: dict[int, Array] = {}
        for start in range(first, end, 3600):
            mine = t == start
            shape = (int(slots[mine].max(initial=-1)) + 1, int(names[mine].max(initial=-1)) + 1)
            made[start] = array = np.zeros((*shape, WIDTH), dtype=np.int64)
            _scatter_add(array, (slots[mine], names[mine]), sums[mine])
        self._publish(_BY + by.value, made, read_at, futures)

    def _span_limit(self, label: str) -> int:
        """How many blocks of `label` one read may cover: those asked for and those between.

        A range's two edge hours are a day apart, and the hours between them hold the edges of
        the shorter ranges a dashboard also shows (the last 1, 6, 12 hours) and of this range
        once it moves: read along with the edges while that fits in half the memory (25 hours
        by minute for 2,000 campaigns), they cost one read instead of one each. Past that,
        reads split, and hold only what was asked for."""
        campaigns = max(len(self.slots), 1)
        if label in (Source.MINUTE, Source.RAW):
            block_bytes = 61 * campaigns * WIDTH * 8
        elif label.startswith(_BY):
            values = self.values.get(sql.Dimension(label.removeprefix(_BY)))
            block_bytes = campaigns * max(len(values or ()), 1) * WIDTH * 8
        else:
            block_bytes = campaigns * WIDTH * 8
        return max(1, self.max_bytes // 2 // block_bytes)

    def _slots_of(self, ids: Array) -> Array:
        """The slot of each campaign id of a read (hundreds of thousands of rows).

        Through a table indexed by id while ids stay below DENSE_IDS (sorting the ids to map
        each distinct one once held the event loop 10 ms per read); by sorting beyond."""
        if not len(ids):
            return np.zeros(0, dtype=np.intp)
        top = int(ids.max())
        if int(ids.min()) < 0 or top >= DENSE_IDS:
            distinct, where = np.unique(ids, return_inverse=True)
            return self.slots.of(distinct.tolist())[where.reshape(-1)]
        if top >= len(self._dense):
            grown = np.full(min(max(top + 1, 2 * len(self._dense)), DENSE_IDS), -1, np.intp)
            grown[: len(self._dense)] = self._dense
            self._dense = grown
        slots = self._dense[ids]
        unseen = slots < 0
        if unseen.any():
            new = np.unique(ids[unseen])
            self._dense[new] = self.slots.of(new.tolist())
            slots = self._dense[ids]
        return slots

    def _publish(
        self,
        label: str,
        made: dict[int, Array],
        read_at: float,
        futures: dict[BlockKey, asyncio.Future[_Block]],
    ) -> None:
        self._runner.metrics.hot_block_reads.labels(label).inc()
        for start, sums in made.items():
            block = _Block.of(label, read_at, sums)
            self._store((label, start), block)
            future = futures.get((label, start))
            if future is not None and not future.done():
                future.set_result(block)

    def _store(self, key: BlockKey, block: _Block) -> None:
        old = self._blocks.pop(key, None)
        if old is not None:
            self._bytes -= old.sums.nbytes
        self._blocks[key] = block
        self._bytes += block.sums.nbytes
        while self._bytes > self.max_bytes and len(self._blocks) > 1:
            _, dropped = self._blocks.popitem(last=False)
            self._bytes -= dropped.sums.nbytes
        self._runner.metrics.hot_bytes.set(self._bytes)


def _step(label: str) -> int:
    """Seconds per block of `label`."""
    whole = _WHOLE_STEP.get(Source(label)) if not label.startswith(_BY) else None
    return int((whole or HOUR).total_seconds())


def _spans(starts: list[int], step: int, limit: int) -> list[list[int]]:
    """Sorted block starts grouped into reads of at most `limit` blocks from first to last."""
    spans: list[list[int]] = []
    for start in starts:
        if spans and (start - spans[-1][0]) // step < limit:
            spans[-1].append(start)
        else:
            spans.append([start])
    return spans


def _scatter_add(array: Array, index: tuple[Array, ...], values: Array) -> None:
    """array[index] += values, rows of `values` repeating an index added up (np.add.at, at a
    fifth of its time: bincount sums in float64, exact while no sum can reach 2**53; a column
    that could, which no real hour does, takes np.add.at)."""
    if not len(values):
        return
    flat = np.ravel_multi_index(index, array.shape[:-1])
    cells = array.reshape(-1, WIDTH)
    for k in range(WIDTH):
        column = values[:, k]
        if int(column.min()) >= 0 and int(column.max()) * len(column) < 2**53:
            summed = np.bincount(flat, weights=column, minlength=len(cells))
            cells[:, k] += summed.astype(np.int64)
        else:
            np.add.at(cells[:, k], flat, column)


def _sums(block: _Block, piece: _Piece, who: int | str) -> Array:
    """The piece's sums: (5,) for one campaign's slot or EVERYONE, (campaigns, 5) for EACH."""
    by_minute = piece.key[0] in (Source.MINUTE, Source.RAW)
    if isinstance(who, str):
        sums = block.everyone if who == EVERYONE else block.sums
    elif who >= block.sums.shape[1 if by_minute else 0]:
        return np.zeros(WIDTH, dtype=np.int64)  # past the block's width: no events
    else:
        sums = block.sums[:, who] if by_minute else block.sums[who]
    if not by_minute:
        return sums
    hour = piece.lo - piece.lo % 3600
    edges: Array = sums[(piece.hi - hour) // 60] - sums[(piece.lo - hour) // 60]
    return edges


def _total(parts: Parts) -> Array:
    total = np.zeros(WIDTH, dtype=np.int64)
    for _, sums in parts:
        total += sums
    return total


def _add(found: dict[int, Array], key: int, value: Array) -> None:
    if key in found:
        found[key] = found[key] + value
    else:
        found[key] = value


def _row(values: Array) -> tuple[int, ...]:
    return tuple(values.tolist())
