"""Per-partition micro-batches. Pure: no Kafka, no ClickHouse.

A batch covers a contiguous offset range of one partition; its insert_deduplication_token is
derived from that range alone, so a batch rebuilt after a crash carries the same token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adpulse.events import EVENT_COLUMNS, DecodedBatch, Event, to_columns


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that failed decoding, kept with what the dead-letter topic needs."""

    value: bytes | None
    key: bytes | None
    headers: list[tuple[str, bytes]]
    offset: int
    reason: str
    detail: str


_TIME = EVENT_COLUMNS.index("event_time")


@dataclass(slots=True)
class _Run:
    """Rows `start` to `stop` (exclusive) of a decoded batch, all added to one partition batch."""

    decoded: DecodedBatch
    start: int
    stop: int


@dataclass
class PartitionBatch:
    """Messages of one partition from `first_offset` to `last_offset`, in offset order."""

    topic: str
    partition: int
    opened_at: float
    target_last: int | None = None
    """When rebuilding a recorded batch: close exactly at this offset, ignoring size and time."""
    first_offset: int | None = None
    last_offset: int = -1
    events: list[Event] = field(default_factory=list)
    """Rows added one event at a time (`add_event`)."""
    dead: list[DeadLetter] = field(default_factory=list)
    duplicates: int = 0
    bytes: int = 0
    _ids: set[str] = field(default_factory=set)
    _runs: list[_Run] = field(default_factory=list)
    """Rows added from decoded batches (`add_row`, the consumer's path), never built as events."""
    _run_rows: int = 0

    @property
    def token(self) -> str:
        """Deterministic from the range: the idempotency key of this batch's insert."""
        return f"{self.topic}:{self.partition}:{self.first_offset}-{self.last_offset}"

    @property
    def empty(self) -> bool:
        return self.first_offset is None

    @property
    def rows(self) -> int:
        """Events held for the insert (duplicates and dead letters are not)."""
        return len(self.events) + self._run_rows

    def _extend(self, offset: int, size: int) -> None:
        if self.first_offset is None:
            self.first_offset = offset
        self.last_offset = offset
        self.bytes += size

    def add_event(self, offset: int, event: Event, size: int, recent: RecentIds) -> bool:
        """Add a decoded event; False if its event_id was already seen (dropped)."""
        self._extend(offset, size)
        if event.event_id in self._ids or event.event_id in recent:
            self.duplicates += 1
            return False
        self._ids.add(event.event_id)
        self.events.append(event)
        return True

    def add_row(self, offset: int, size: int, decoded: DecodedBatch, row: int,
                recent: RecentIds) -> bool:  # fmt: skip
        """Add the event of message `row` of a decoded chunk; False if its event_id was already
        seen (dropped).

        Consecutive rows of one chunk extend one run, and the insert's columns are sliced from
        the chunk's (`columns`): no object is built per event. Runs once per event, so
        `_extend` and `RecentIds.__contains__` are inlined.
        """
        if self.first_offset is None:
            self.first_offset = offset
        self.last_offset = offset
        self.bytes += size
        event_id = decoded.columns[0][row]
        if event_id in self._ids or event_id in recent._current or event_id in recent._previous:
            self.duplicates += 1
            return False
        self._ids.add(event_id)
        self._run_rows += 1
        runs = self._runs
        if runs:
            run = runs[-1]
            if run.stop == row and run.decoded is decoded:
                run.stop = row + 1
                return True
        runs.append(_Run(decoded, row, row + 1))
        return True

    def add_rows(self, first_offset: int, last_offset: int, size: int, decoded: DecodedBatch,
                 start: int, stop: int, recent: RecentIds) -> bool:  # fmt: skip
        """Add the events of messages `start` to `stop` (exclusive) of a decoded chunk at once,
        all events, at offsets `first_offset` to `last_offset`, `size` bytes in all; the
        caller has checked the batch is not full before any of them. False, adding nothing,
        when one of their event_ids repeats (the caller then adds them one by one, which
        drops the repeats): the sets compare in C, so no Python runs per event.
        """
        ids = decoded.columns[0][start:stop]
        fresh = set(ids)
        if (
            len(fresh) != stop - start
            or not fresh.isdisjoint(self._ids)
            or not fresh.isdisjoint(recent._current)
            or not fresh.isdisjoint(recent._previous)
        ):
            return False
        self._ids |= fresh
        if self.first_offset is None:
            self.first_offset = first_offset
        self.last_offset = last_offset
        self.bytes += size
        self._run_rows += stop - start
        runs = self._runs
        if runs and runs[-1].stop == start and runs[-1].decoded is decoded:
            runs[-1].stop = stop
        else:
            runs.append(_Run(decoded, start, stop))
        return True

    def columns(self) -> dict[str, list[Any]]:
        """The insert's columns (`EVENT_COLUMNS`): events added one at a time, then the runs."""
        columns = to_columns(self.events)
        for run in self._runs:
            for name, column in zip(EVENT_COLUMNS, run.decoded.columns, strict=True):
                columns[name] += column[run.start : run.stop]
        return columns

    def newest_ms(self) -> int | None:
        """The newest event time held, epoch ms; None when the batch holds no event."""
        newest = [max(e.event_time_ms for e in self.events)] if self.events else []
        newest += [max(run.decoded.columns[_TIME][run.start : run.stop]) for run in self._runs]
        return max(newest, default=None)

    def add_dead(self, letter: DeadLetter, size: int) -> None:
        self._extend(letter.offset, size)
        self.dead.append(letter)

    def due(self, now: float, interval: float, max_rows: int, max_bytes: int) -> bool:
        if self.empty:
            return False
        if self.target_last is not None:
            return self.last_offset >= self.target_last
        return self.full(max_rows, max_bytes) or now - self.opened_at >= interval

    def full(self, max_rows: int, max_bytes: int) -> bool:
        """A size bound is reached (a rebuilt batch ends at its recorded offset instead)."""
        return self.rows >= max_rows or self.bytes >= max_bytes

    def seen(self) -> set[str]:
        return self._ids


class RecentIds:
    """About the last `capacity` event_ids of a partition, to drop producer retries across
    batches.

    In memory and bounded: a duplicate older than the window, or one replayed after a restart,
    is not caught here. Ad servers key messages by event_id so retries share a partition.
    Two generations of sets, not a per-id queue: remembering a batch is one C-level set
    update, and the window holds between `capacity / 2` and `capacity` ids.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._current: set[str] = set()
        self._previous: set[str] = set()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._current or event_id in self._previous

    def __len__(self) -> int:
        return len(self._current) + len(self._previous - self._current)

    def remember(self, event_ids: set[str]) -> None:
        if len(self._current) >= self.capacity // 2:
            self._previous, self._current = self._current, set()
        self._current |= event_ids
