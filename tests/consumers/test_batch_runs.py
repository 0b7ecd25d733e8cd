"""A batch filled from decoded chunks (`add_row`, the consumer's path) holds what the same
events added one at a time (`add_event`, the reference) would: the same insert columns, rows,
duplicates, offsets and newest time."""

from __future__ import annotations

from adpulse.events import Event, decode_many, encode, to_columns
from consumers.batch import DeadLetter, PartitionBatch, RecentIds
from tests.support.events import random_events

NOW_MS = 1_795_780_800_000


def test_rows_from_chunks_give_the_columns_of_the_events_one_at_a_time() -> None:
    events = random_events(300, NOW_MS - 60_000, 60_000, seed=4)
    [written] = random_events(1, NOW_MS - 60_000, 60_000, seed=5)
    raws: list[bytes | None] = [encode(e) for e in events]
    raws[17] = b"not json"  # a dead letter inside a run
    raws[40] = raws[39]  # a producer retry: a duplicate inside the batch
    raws[250] = encode(written)  # a repeat of an id the previous batch wrote
    chunks = [raws[:120], raws[120:200], raws[200:]]

    recent = RecentIds()
    earlier = PartitionBatch("t", 0, 0.0)
    assert earlier.add_event(0, written, 1, recent)
    recent.remember(earlier.seen())

    by_rows, by_events = PartitionBatch("t", 0, 0.0), PartitionBatch("t", 0, 0.0)
    offset = 1000
    for chunk in chunks:
        decoded = decode_many(chunk, now_ms=NOW_MS)
        for index, result in enumerate(decoded.results()):
            if isinstance(result, Event):
                added = by_rows.add_row(offset, 10, decoded, index, recent)
                assert added == by_events.add_event(offset, result, 10, recent)
            else:
                letter = DeadLetter(chunk[index], None, [], offset, result.label(), result.detail)
                by_rows.add_dead(letter, 10)
                by_events.add_dead(letter, 10)
            offset += 1

    assert by_rows.columns() == by_events.columns() == to_columns(by_events.events)
    assert by_rows.rows == len(by_events.events) == 300 - 3
    assert by_rows.duplicates == by_events.duplicates == 2
    assert by_rows.token == by_events.token == "t:0:1000-1299"
    assert by_rows.seen() == by_events.seen()
    assert (
        by_rows.newest_ms()
        == by_events.newest_ms()
        == max(e.event_time_ms for e in by_events.events)
    )
    assert by_rows.full(max_rows=297, max_bytes=10**9)
    assert not by_rows.full(max_rows=298, max_bytes=10**9)


def test_an_empty_batch_has_no_columns_rows_or_newest_time() -> None:
    batch = PartitionBatch("t", 0, 0.0)
    assert batch.rows == 0 and batch.newest_ms() is None
    assert all(column == [] for column in batch.columns().values())


def test_rows_added_a_run_at_a_time_match_one_at_a_time_and_a_repeat_adds_nothing() -> None:
    events = random_events(200, NOW_MS - 60_000, 60_000, seed=6)
    raws: list[bytes | None] = [encode(e) for e in events]
    decoded = decode_many(raws, now_ms=NOW_MS)
    sizes = [len(r or b"") for r in raws]
    recent = RecentIds()
    [earlier] = random_events(1, NOW_MS - 60_000, 60_000, seed=7)
    recent.remember({earlier.event_id})

    by_runs, by_rows = PartitionBatch("t", 0, 0.0), PartitionBatch("t", 0, 0.0)
    for start, stop in ((0, 50), (50, 120), (120, 200)):
        assert by_runs.add_rows(start, stop - 1, sum(sizes[start:stop]), decoded, start, stop,
                                recent)  # fmt: skip
    for index in range(200):
        assert by_rows.add_row(index, sizes[index], decoded, index, recent)
    assert by_runs.columns() == by_rows.columns()
    assert (by_runs.rows, by_runs.bytes, by_runs.token) == (
        by_rows.rows,
        by_rows.bytes,
        by_rows.token,
    )
    assert by_runs.seen() == by_rows.seen()
    assert len(by_runs._runs) == 1  # consecutive runs of one chunk merge

    # A repeat inside the run, of the batch's own ids, or of the recent window: nothing added.
    again = [raws[0], encode(events[5]), encode(events[5])]
    window = [encode(earlier)]
    for chunk, batch in ((again[1:], PartitionBatch("t", 0, 0.0)), (again[:1], by_runs),
                         (window, PartitionBatch("t", 0, 0.0))):  # fmt: skip
        redecoded = decode_many(chunk, now_ms=NOW_MS)
        before = (batch.rows, batch.bytes, batch.first_offset, batch.last_offset)
        assert not batch.add_rows(500, 500 + len(chunk) - 1, 99, redecoded, 0, len(chunk), recent)
        assert (batch.rows, batch.bytes, batch.first_offset, batch.last_offset) == before
