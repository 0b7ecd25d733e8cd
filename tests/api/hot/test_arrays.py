"""The maths of the rollups held in memory (api/hot/arrays.py), on arrays computed by hand."""

from __future__ import annotations

import numpy as np

from api.hot.arrays import (
    EACH,
    EVERYONE,
    breakdown_arrays,
    campaign_sums,
    piece_sums,
    scatter_add,
    source_arrays,
    value_sums,
)
from api.hot.blocks import Array, Block, Piece, Slots

HOUR0 = 1_800_000_000 - 1_800_000_000 % 3600  # an hour's start, in epoch seconds


def rows(*found: tuple[int, int, list[int]]) -> tuple[Array, Array, Array]:
    """(t, slot, sums) columns of (seconds into HOUR0, campaign slot, five sums) rows."""
    t = np.asarray([HOUR0 + s for s, _, _ in found], dtype=np.int64)
    slots = np.asarray([c for _, c, _ in found], dtype=np.intp)
    sums = np.asarray([v for _, _, v in found], dtype=np.int64)
    return t, slots, sums


def test_scatter_add_sums_rows_that_repeat_a_cell() -> None:
    rng = np.random.default_rng(7)
    cells = (rng.integers(0, 4, 500), rng.integers(0, 6, 500))
    values = rng.integers(0, 1_000_000, (500, 5))
    values[:3, 4] = 2**62  # a column too big for float64 sums takes the exact path
    array = np.zeros((4, 6, 5), dtype=np.int64)
    scatter_add(array, cells, values)
    expected = np.zeros((4, 6, 5), dtype=np.int64)
    for i in range(500):
        expected[cells[0][i], cells[1][i]] += values[i]
    assert np.array_equal(array, expected)


def test_an_hour_by_minute_answers_any_minute_range_by_one_subtraction() -> None:
    t, slots, sums = rows(
        (0, 0, [1, 0, 0, 10, 0]),  # minute 0
        (120, 1, [1, 1, 0, 5, 0]),  # minute 2
        (150, 0, [1, 0, 0, 3, 0]),  # minute 2
        (3599, 1, [0, 0, 1, 0, 7]),  # minute 59
    )
    made = source_arrays(t, slots, sums, HOUR0, HOUR0 + 3600, 3600, whole=False)
    assert list(made) == [HOUR0]
    assert made[HOUR0].shape == (61, 2, 5)
    block = Block.of("minute", 0.0, made[HOUR0])
    minutes_1_2 = Piece(("minute", HOUR0), HOUR0 + 60, HOUR0 + 180)
    assert piece_sums(block, minutes_1_2, EVERYONE).tolist() == [2, 1, 0, 8, 0]
    assert piece_sums(block, minutes_1_2, 0).tolist() == [1, 0, 0, 3, 0]
    assert piece_sums(block, minutes_1_2, EACH).tolist() == [[1, 0, 0, 3, 0], [1, 1, 0, 5, 0]]
    assert piece_sums(block, minutes_1_2, 5).tolist() == [0] * 5  # a campaign past the block
    hour = Piece(("minute", HOUR0), HOUR0, HOUR0 + 3600)
    assert piece_sums(block, hour, EVERYONE).tolist() == [3, 1, 1, 18, 7]


def test_whole_blocks_add_up_per_step_and_campaigns_come_back_by_id() -> None:
    t, slots, sums = rows(
        (0, 1, [2, 1, 0, 4, 0]),
        (0, 1, [1, 0, 1, 0, 9]),  # the same campaign again (an unmerged part)
        (3600, 0, [5, 0, 0, 1, 0]),
        (3600, 2, [0, 0, 0, 6, 0]),  # spend without events: not an active campaign
    )
    made = source_arrays(t, slots, sums, HOUR0, HOUR0 + 7200, 3600, whole=True)
    assert {k: v.tolist() for k, v in made.items()} == {
        HOUR0: [[0, 0, 0, 0, 0], [3, 1, 1, 4, 9]],
        HOUR0 + 3600: [[5, 0, 0, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 6, 0]],
    }
    blocks = {("hourly", s): Block.of("hourly", 0.0, v) for s, v in made.items()}
    both = [Piece(key, key[1], key[1] + 3600) for key in blocks]
    campaigns: Slots[int] = Slots()
    campaigns.of([40, 7, 12])  # slots 0, 1, 2
    ids, found = campaign_sums(both, blocks, campaigns)
    assert ids.tolist() == [7, 40]
    assert found.tolist() == [[3, 1, 1, 4, 9], [5, 0, 0, 1, 0]]


def test_breakdown_hours_add_up_per_campaign_and_value() -> None:
    t, campaigns, sums = rows((0, 1, [1, 0, 0, 2, 0]), (0, 0, [3, 1, 0, 0, 0]))
    values = np.asarray([1, 0], dtype=np.intp)
    made = breakdown_arrays(t, campaigns, values, sums, HOUR0, HOUR0 + 3600)
    assert made[HOUR0].tolist() == [
        [[3, 1, 0, 0, 0], [0, 0, 0, 0, 0]],
        [[0, 0, 0, 0, 0], [1, 0, 0, 2, 0]],
    ]
    blocks = [Block.of("by:country", 0.0, made[HOUR0])] * 2
    assert value_sums(blocks, 3, EVERYONE).tolist() == [
        [6, 2, 0, 0, 0],
        [2, 0, 0, 4, 0],
        [0, 0, 0, 0, 0],
    ]
    assert value_sums(blocks, 2, 1).tolist() == [[0, 0, 0, 0, 0], [2, 0, 0, 4, 0]]
    assert value_sums(blocks, 2, 9).tolist() == [[0] * 5] * 2  # past the blocks' width
    assert value_sums(blocks, 2, None).tolist() == [[0] * 5] * 2  # a campaign never seen
