"""Reads (api/hot/reads.py) return the arrays of every block asked for and between, as the raw
events sum them, and keep nothing: no store, no metric, a second read queries again."""

from __future__ import annotations

import asyncio

import numpy as np

from api.hot.blocks import Array, Slots, SlotTable, epoch, moment
from api.hot.reads import BlockReader, read_breakdown, read_source
from api.queries import sql
from api.queries.plan import Source
from api.queries.ranges import HOUR, floor
from api.runner import QueryRunner
from tests.api.conftest import Seeded
from tests.api.support import RecordingClient, raw_totals


def hour(seeded: Seeded, back: int) -> int:
    """The start of the hour `back` hours before the one under way, in epoch seconds."""
    return epoch(floor(seeded.now, HOUR)) - back * 3600


def test_a_read_returns_every_hour_from_first_to_last_as_the_events_sum_it(
    seeded: Seeded, runner: QueryRunner, recording: RecordingClient
) -> None:
    slots: Slots[int] = Slots()
    first, last = hour(seeded, 5), hour(seeded, 2)
    made = asyncio.run(
        read_source(runner, seeded.client.database, SlotTable(slots), Source.HOURLY, [last, first])
    )
    assert sorted(made) == [first, first + 3600, first + 7200, last]
    assert len(recording.data_queries()) == 1
    for start, sums in made.items():
        want = raw_totals(seeded.client, moment(start), moment(start + 3600), key="campaign_id")
        got = [(slots.ids[i], *row) for i, row in enumerate(sums.tolist()) if any(row[:3])]
        assert sorted(got) == want, start
    reads = runner.metrics.registry.get_sample_value(
        "adpulse_api_hot_block_reads_total", {"table": "hourly"}
    )
    assert reads is None  # counting and keeping blocks is the store's part


def test_an_hour_by_minute_holds_running_totals_and_raw_events_read_the_same(
    seeded: Seeded, runner: QueryRunner
) -> None:
    slots: Slots[int] = Slots()
    campaigns = SlotTable(slots)
    start = hour(seeded, 3)
    db = seeded.client.database
    minute = asyncio.run(read_source(runner, db, campaigns, Source.MINUTE, [start]))[start]
    assert minute.shape[0] == 61 and not minute[0].any()
    for lo, hi in [(0, 60), (7, 23), (59, 60)]:
        want = raw_totals(seeded.client, moment(start + lo * 60), moment(start + hi * 60))
        assert (minute[hi] - minute[lo]).sum(axis=0).tolist() == [int(v or 0) for v in want[0]]
        one = raw_totals(
            seeded.client, moment(start + lo * 60), moment(start + hi * 60), campaign_id=3
        )
        slot = slots.get(3)
        assert slot is not None
        assert (minute[hi, slot] - minute[lo, slot]).tolist() == [int(v or 0) for v in one[0]]
    raw = asyncio.run(read_source(runner, db, campaigns, Source.RAW, [start]))[start]
    assert np.array_equal(raw, minute)


def test_a_breakdown_read_learns_new_values_and_then_reads_once(
    seeded: Seeded, runner: QueryRunner, recording: RecordingClient
) -> None:
    slots: Slots[int] = Slots()
    values: Slots[str] = Slots()
    campaigns = SlotTable(slots)
    start = hour(seeded, 4)
    db = seeded.client.database

    def read() -> Array:
        found = read_breakdown(runner, db, campaigns, values, sql.Dimension.COUNTRY, [start])
        return asyncio.run(found)[start]

    first = read()
    assert len(recording.data_queries()) == 3  # blocks, the values found in them, blocks again
    want = raw_totals(seeded.client, moment(start), moment(start + 3600), key="toString(country)")
    by_value = first.sum(axis=0).tolist()
    got = [(values.ids[v], *row) for v, row in enumerate(by_value) if any(row[:3])]
    assert sorted(got) == want
    recording.statements.clear()
    assert np.array_equal(read(), first)
    assert len(recording.data_queries()) == 1  # nothing kept but the values' slots


def test_the_reader_reads_by_label_and_sizes_blocks_by_what_it_has_seen(
    seeded: Seeded, runner: QueryRunner
) -> None:
    slots: Slots[int] = Slots()
    values: dict[sql.Dimension, Slots[str]] = {}
    reader = BlockReader(seeded.client.database, runner, slots, values)
    assert reader.block_bytes("minute") == 61 * 5 * 8  # nothing seen yet: one campaign
    start = hour(seeded, 2)
    made = asyncio.run(reader.read("by:device_type", [start]))
    assert list(made) == [start]
    devices = len(values[sql.Dimension.DEVICE_TYPE])
    assert made[start].shape[1:] == (devices, 5)
    assert reader.block_bytes("by:device_type") == len(slots) * devices * 5 * 8
    assert reader.block_bytes("hourly") == len(slots) * 5 * 8
    assert reader.block_bytes("raw") == 61 * len(slots) * 5 * 8
