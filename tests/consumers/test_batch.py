"""Pure batch bookkeeping: tokens from offset ranges and the bounded window of recent ids."""

from __future__ import annotations

from consumers.batch import PartitionBatch, RecentIds
from tests.support.events import random_events


def test_recent_ids_keep_at_least_half_the_capacity_and_never_more_than_it() -> None:
    recent = RecentIds(capacity=1_000)
    for batch in range(20):
        recent.remember({f"{batch}-{i}" for i in range(100)})
        assert len(recent) <= 1_000
    # The newest 500 ids (five batches) are always still known.
    assert all(f"{b}-{i}" in recent for b in range(15, 20) for i in range(100))
    assert "0-0" not in recent


def test_a_duplicate_in_an_earlier_batch_is_dropped_and_counted() -> None:
    recent = RecentIds()
    first = PartitionBatch("t", 0, opened_at=0.0)
    [event] = random_events(1, start_ms=0, span_ms=1)
    assert first.add_event(10, event, 100, recent)
    recent.remember(first.seen())
    second = PartitionBatch("t", 0, opened_at=0.0)
    assert not second.add_event(11, event, 100, recent)
    assert second.duplicates == 1 and second.events == []
    # The offset still belongs to the batch: its token covers it, so nothing is re-read.
    assert second.token == "t:0:11-11"
