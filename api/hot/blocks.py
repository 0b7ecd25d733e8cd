"""What the rollups held in memory are made of: blocks, their keys, and which cover a question.

A block is one table's sums over one step of time, for every campaign:

- a whole hour (`campaign_hourly`) or day (`campaign_daily`): one (campaigns x 5) array;
- an hour at minute resolution (`events_per_minute`, or raw events past that rollup's TTL):
  (61 x campaigns x 5) sums cumulative over its minutes, so any minute edge is one subtraction.
- an hour of a country or device-type breakdown (`breakdown_hourly`): (campaigns x values x 5).

A question is answered from blocks only when its segments (api/queries/plan.py, the same plan
the SQL path uses) all start within `horizon` of now, end before the next hour, and need few
minute-resolution hours; anything else goes to ClickHouse as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import numpy as np

from api.queries import sql
from api.queries.plan import Segment, Source
from api.queries.ranges import DAY, EPOCH, HOUR, ceil, floor

WIDTH = len(sql.COUNTS)
# Per question: the four edges of a period and the one before it, and a raw/minute split.
MAX_MINUTE_HOURS = 6
DENSE_IDS = 1 << 22  # campaign ids below this map through an array (32 MiB at most)
WHOLE_STEP = {Source.DAILY: DAY, Source.HOURLY: HOUR}  # other sources: hours by minute
BY = "by:"  # breakdown blocks: "by:country"

# What a block holds (a Source, or "by:country" and "by:device_type" for breakdowns) and
# its start in epoch seconds.
BlockKey = tuple[str, int]
Array = np.ndarray[Any, Any]
T = TypeVar("T", int, str)


def epoch(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds())


def moment(seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Block:
    read_at: float  # wall-clock seconds
    # (campaigns, 5); (61, campaigns, 5) by minute; (campaigns, values, 5) for a breakdown
    sums: np.ndarray[Any, np.dtype[np.int64]]
    # The same summed over campaigns: (5,), (61, 5) or (values, 5); most questions want these.
    everyone: np.ndarray[Any, np.dtype[np.int64]]

    @classmethod
    def of(cls, label: str, read_at: float, sums: Array) -> Block:
        by_minute = label in (Source.MINUTE, Source.RAW)  # campaigns are the second axis
        return cls(read_at, sums, sums.sum(axis=1 if by_minute else 0))


@dataclass(frozen=True, slots=True)
class Piece:
    """[lo, hi) of one block, in epoch seconds."""

    key: BlockKey
    lo: int
    hi: int


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


class SlotTable:
    """The slot in `slots` of each campaign id of a read (hundreds of thousands of rows).

    Through a table indexed by id while ids stay below DENSE_IDS (sorting the ids to map
    each distinct one once held the event loop 10 ms per read); by sorting beyond."""

    def __init__(self, slots: Slots[int]) -> None:
        self.slots = slots
        self._dense = np.full(0, -1, dtype=np.intp)  # campaign id -> slot, -1: not seen yet

    def of(self, ids: Array) -> Array:
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


def covers(start: datetime, end: datetime, now: datetime, horizon: timedelta) -> bool:
    """[start, end) lies within `horizon` of now and ends before the next hour does."""
    return start >= now - horizon and end <= ceil(now, HOUR) + HOUR


def pieces(segments: Sequence[Segment], now: datetime, horizon: timedelta) -> list[Piece] | None:
    """The blocks covering `segments`, or None when blocks should not answer them."""
    if not all(covers(s.start, s.end, now, horizon) for s in segments):
        return None
    found: list[Piece] = []
    for segment in segments:
        lo, hi = epoch(segment.start), epoch(segment.end)
        whole = WHOLE_STEP.get(segment.source)
        if whole is not None:  # plan() hands these over aligned to their step
            size = int(whole.total_seconds())
            found += [Piece((segment.source, t), t, t + size) for t in range(lo, hi, size)]
            continue
        hour = epoch(floor(segment.start, HOUR))
        while hour < hi:
            found.append(Piece((segment.source, hour), max(lo, hour), min(hi, hour + 3600)))
            hour += 3600
    by_minute = {p.key for p in found if p.key[0] not in WHOLE_STEP}
    return found if len(by_minute) <= MAX_MINUTE_HOURS else None


def step(label: str) -> int:
    """Seconds per block of `label`."""
    whole = WHOLE_STEP.get(Source(label)) if not label.startswith(BY) else None
    return int((whole or HOUR).total_seconds())


def spans(starts: list[int], step: int, limit: int) -> list[list[int]]:
    """Sorted block starts grouped into reads of at most `limit` blocks from first to last."""
    found: list[list[int]] = []
    for start in starts:
        if found and (start - found[-1][0]) // step < limit:
            found[-1].append(start)
        else:
            found.append([start])
    return found
