"""The maths of the rollups held in memory: numpy over blocks, no I/O.

A read's rows become blocks (`source_arrays`, `breakdown_arrays`), and a question's answer is
the sum of the pieces of blocks that cover it (`piece_sums`, `total`, `campaign_sums`,
`buckets`, `value_sums`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from adpulse.clickhouse.client import Row
from api.hot.blocks import WHOLE_STEP, WIDTH, Array, Block, BlockKey, Piece, Slots, moment
from api.queries.plan import Source
from api.queries.ranges import Granularity

Parts = list[tuple[Piece, Array]]  # each piece and its sums
EVERYONE, EACH = "everyone", "each"  # all campaigns summed, or every campaign apart
Who = int | str | None  # a campaign's slot, EVERYONE, EACH, or None: a campaign never seen


def scatter_add(array: Array, index: tuple[Array, ...], values: Array) -> None:
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


def source_arrays(
    t: Array, slots: Array, sums: Array, first: int, end: int, step: int, *, whole: bool
) -> dict[int, Array]:
    """The blocks of `step` seconds from `first` to `end`, by start: rows of (bucket start in
    epoch seconds, campaign slot, *COUNTS) added up; unless `whole`, hours by minute, their
    sums cumulative over the minutes."""
    block = (t - first) // step
    made: dict[int, Array] = {}
    for index in range(len(range(first, end, step))):
        mine = block == index
        width = int(slots[mine].max(initial=-1)) + 1  # campaigns past it read as zeros
        if whole:
            made[first + index * step] = array = np.zeros((width, WIDTH), dtype=np.int64)
            scatter_add(array, (slots[mine],), sums[mine])
        else:
            made[first + index * step] = array = np.zeros((61, width, WIDTH), dtype=np.int64)
            minutes = (t[mine] - first) % step // 60 + 1
            scatter_add(array, (minutes, slots[mine]), sums[mine])
            np.cumsum(array, axis=0, out=array)
    return made


def breakdown_arrays(
    t: Array, slots: Array, names: Array, sums: Array, first: int, end: int
) -> dict[int, Array]:
    """The hours of a breakdown from `first` to `end`, by start: rows of (hour in epoch
    seconds, campaign slot, value slot, *COUNTS) added up."""
    made: dict[int, Array] = {}
    for start in range(first, end, 3600):
        mine = t == start
        shape = (int(slots[mine].max(initial=-1)) + 1, int(names[mine].max(initial=-1)) + 1)
        made[start] = array = np.zeros((*shape, WIDTH), dtype=np.int64)
        scatter_add(array, (slots[mine], names[mine]), sums[mine])
    return made


def piece_sums(block: Block, piece: Piece, who: int | str) -> Array:
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


def total(parts: Parts) -> Array:
    found = np.zeros(WIDTH, dtype=np.int64)
    for _, sums in parts:
        found += sums
    return found


def campaign_sums(
    pieces: list[Piece], blocks: dict[BlockKey, Block], slots: Slots[int]
) -> tuple[Array, Array]:
    """Campaigns with events in `pieces`, by id: (ids, (campaigns x 5) sums)."""
    acc = np.zeros((len(slots), WIDTH), dtype=np.int64)
    for piece in pieces:
        sums = piece_sums(blocks[piece.key], piece, EACH)
        acc[: len(sums)] += sums
    active = np.flatnonzero(acc[:, :3].any(axis=1))
    ids = np.asarray(slots.ids, dtype=np.int64)[active]
    order = np.argsort(ids, kind="stable")
    return ids[order], acc[active][order]


def buckets(
    parts: Parts, blocks: dict[BlockKey, Block], who: int | str, granularity: Granularity
) -> list[Row]:
    """(bucket start, *sums) per step of `granularity` with events, in time order."""
    step = int(granularity.step.total_seconds())
    found: dict[int, Array] = {}
    for piece, sums in parts:
        if granularity is Granularity.MINUTE and piece.key[0] not in WHOLE_STEP:
            for lo in range(piece.lo, piece.hi, 60):
                minute = Piece(piece.key, lo, lo + 60)
                _add(found, lo, piece_sums(blocks[piece.key], minute, who))
        else:
            _add(found, piece.lo - piece.lo % step, sums)
    return [(moment(t), *as_row(v)) for t, v in sorted(found.items()) if v[:3].any()]


def value_sums(blocks: Iterable[Block], values: int, who: Who) -> Array:
    """(values x 5) sums of breakdown blocks over one campaign's slot or EVERYONE; zeros for
    None (a campaign never seen)."""
    acc = np.zeros((values, WIDTH), dtype=np.int64)
    if who is None:
        return acc
    for block in blocks:
        if isinstance(who, str):
            acc[: len(block.everyone)] += block.everyone
        elif who < len(block.sums):
            acc[: block.sums.shape[1]] += block.sums[who]
    return acc


def as_row(values: Array) -> tuple[int, ...]:
    return tuple(values.tolist())


def _add(found: dict[int, Array], key: int, value: Array) -> None:
    if key in found:
        found[key] = found[key] + value
    else:
        found[key] = value
