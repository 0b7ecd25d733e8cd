"""Blocks (api/hot/blocks.py): which pieces of which blocks cover a question, how reads group
block starts, and campaign ids mapped to the same slots by either path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from api.hot.blocks import (
    DENSE_IDS,
    MAX_MINUTE_HOURS,
    Piece,
    Slots,
    SlotTable,
    epoch,
    pieces,
    spans,
    step,
)
from api.queries.plan import Segment, Source
from api.queries.ranges import DAY, HOUR, MINUTE

NOW = datetime(2026, 3, 10, 12, 40, tzinfo=UTC)
HORIZON = timedelta(hours=72)
NOON = datetime(2026, 3, 10, 12, tzinfo=UTC)


def test_minute_segments_split_into_hour_pieces_at_their_edges() -> None:
    start, end = NOON - 2 * HOUR + 7 * MINUTE, NOON + 23 * MINUTE
    found = pieces([Segment(Source.MINUTE, start, end)], NOW, HORIZON)
    ten, eleven, noon = epoch(NOON - 2 * HOUR), epoch(NOON - HOUR), epoch(NOON)
    assert found == [
        Piece(("minute", ten), epoch(start), eleven),
        Piece(("minute", eleven), eleven, noon),
        Piece(("minute", noon), noon, epoch(end)),
    ]


def test_whole_step_segments_give_one_whole_block_per_step() -> None:
    day = datetime(2026, 3, 8, tzinfo=UTC)
    segments = [
        Segment(Source.DAILY, day, day + DAY),
        Segment(Source.HOURLY, day + DAY, day + DAY + 2 * HOUR),
    ]
    found = pieces(segments, NOW, HORIZON)
    t = epoch(day)
    assert found == [
        Piece(("daily", t), t, t + 86400),
        Piece(("hourly", t + 86400), t + 86400, t + 90000),
        Piece(("hourly", t + 90000), t + 90000, t + 93600),
    ]


def test_segments_past_the_horizon_the_next_hour_or_too_many_minute_hours_are_declined() -> None:
    old = NOW - HORIZON - MINUTE
    assert pieces([Segment(Source.HOURLY, old, old + HOUR)], NOW, HORIZON) is None
    next_hour = Segment(Source.MINUTE, NOON + HOUR, NOON + 2 * HOUR)  # ends as it does
    assert pieces([next_hour], NOW, HORIZON) is not None
    later = Segment(Source.MINUTE, NOON + HOUR, NOON + 2 * HOUR + MINUTE)
    assert pieces([later], NOW, HORIZON) is None
    most = NOON - MAX_MINUTE_HOURS * HOUR
    assert pieces([Segment(Source.MINUTE, most, NOON)], NOW, HORIZON) is not None
    too_many = [Segment(Source.MINUTE, most - HOUR, NOON)]
    assert pieces(too_many, NOW, HORIZON) is None


def test_reads_group_starts_into_spans_of_at_most_limit_blocks() -> None:
    assert step("daily") == 86400
    assert step("hourly") == step("minute") == step("raw") == step("by:country") == 3600
    starts = [0, 3600, 7200, 10800, 36000]
    assert spans(starts, 3600, 3) == [[0, 3600, 7200], [10800], [36000]]
    assert spans(starts, 3600, 1) == [[s] for s in starts]
    assert spans(starts, 3600, 11) == [starts]


def test_campaign_ids_map_to_the_same_slots_below_and_beyond_the_dense_table() -> None:
    slots: Slots[int] = Slots()
    table = SlotTable(slots)
    big = DENSE_IDS + 5
    first = table.of(np.asarray([7, big, 3, 7], dtype=np.int64))  # the sorting path
    second = table.of(np.asarray([3, 7, 9, 3], dtype=np.int64))  # the table path
    slot = {c: slots.get(c) for c in (3, 7, 9, big)}
    assert first.tolist() == [slot[7], slot[big], slot[3], slot[7]]
    assert second.tolist() == [slot[3], slot[7], slot[9], slot[3]]
    assert sorted(v for v in slot.values() if v is not None) == [0, 1, 2, 3]
    assert None not in slot.values()
    assert table.of(np.zeros(0, dtype=np.int64)).tolist() == []
