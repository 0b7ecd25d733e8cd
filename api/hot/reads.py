"""The reads from ClickHouse behind the rollups held in memory: rows in, block arrays out.

A read is one query for a run of blocks of one table, and returns their arrays by start
(`{start: sums}`); it keeps nothing and publishes nothing: the store (api/hot/store.py) does.
It learns campaign ids and breakdown values into the slots it shares with the answers.

Costs: a block by minute is ~5 MB and ~30 ms to read for 2,000 campaigns; a whole hour 80 KB.
The dearest is an hour of raw events (the start of a "previous" period past the minute
rollup's TTL): every event of the hour grouped per minute, ~0.9 s on one chDB thread at 8M
events an hour, once per `ttl_s` instead of a raw scan for every question that needs it.
"""

from __future__ import annotations

from api.hot.arrays import breakdown_arrays, source_arrays
from api.hot.blocks import BY, WHOLE_STEP, WIDTH, Array, Slots, SlotTable, moment, step
from api.queries import sql
from api.queries.plan import Source
from api.queries.ranges import TimeRange
from api.runner import QueryRunner


async def read_source(
    runner: QueryRunner, database: str, campaigns: SlotTable, source: Source, starts: list[int]
) -> dict[int, Array]:
    """One query for the blocks of `source` from the first to the last of `starts`."""
    size = step(source)
    first, end = min(starts), max(starts) + size
    window = TimeRange(moment(first), moment(end))
    query = sql.campaign_blocks(database, source, window)
    rows = await runner.matrix(query, endpoint="hot")
    t, slots, sums = rows[:, 0], campaigns.of(rows[:, 1]), rows[:, 2:]
    return source_arrays(t, slots, sums, first, end, size, whole=source in WHOLE_STEP)


async def read_breakdown(
    runner: QueryRunner,
    database: str,
    campaigns: SlotTable,
    values: Slots[str],
    by: sql.Dimension,
    starts: list[int],
) -> dict[int, Array]:
    """One query for the hours of breakdown `by` from the first to the last of `starts`; more
    when the hours hold values not in `values` yet (learned, then read again)."""
    first, end = min(starts), max(starts) + 3600
    window = TimeRange(moment(first), moment(end))
    for _ in range(3):
        query = sql.breakdown_blocks(database, by, window, values.ids)
        rows = await runner.matrix(query, endpoint="hot")
        if not len(rows) or rows[:, 2].min() > 0:
            break
        # A value not seen before (index 0): learn the values, and read again.
        found = await runner.rows(sql.breakdown_values(database, by, window), endpoint="hot")
        values.of(str(value) for (value,) in found)
    else:
        raise RuntimeError(f"the values of {by} kept changing while read; try again")
    t, slots, names, sums = rows[:, 0], campaigns.of(rows[:, 1]), rows[:, 2] - 1, rows[:, 3:]
    return breakdown_arrays(t, slots, names, sums, first, end)


class BlockReader:
    """Reads the blocks of one database, by label (a Source, or "by:" and a dimension).

    Campaign ids and breakdown values found are added to `slots` and `values`, which the
    answers share: a block's index along those axes is a slot there."""

    def __init__(
        self,
        database: str,
        runner: QueryRunner,
        slots: Slots[int],
        values: dict[sql.Dimension, Slots[str]],
    ) -> None:
        self.database = database
        self.slots = slots
        self.values = values
        self._runner = runner
        self._campaigns = SlotTable(slots)

    async def read(self, label: str, starts: list[int]) -> dict[int, Array]:
        """The blocks of `label` from the first to the last of `starts`, every one between
        included, by start. Raises what the query raises."""
        if label.startswith(BY):
            by = sql.Dimension(label.removeprefix(BY))
            values = self.values.setdefault(by, Slots())
            return await read_breakdown(
                self._runner, self.database, self._campaigns, values, by, starts
            )
        source = Source(label)
        return await read_source(self._runner, self.database, self._campaigns, source, starts)

    def block_bytes(self, label: str) -> int:
        """About what a block of `label` holds now: every campaign (and value) seen so far."""
        campaigns = max(len(self.slots), 1)
        if label in (Source.MINUTE, Source.RAW):
            return 61 * campaigns * WIDTH * 8
        if label.startswith(BY):
            values = self.values.get(sql.Dimension(label.removeprefix(BY)))
            return campaigns * max(len(values or ()), 1) * WIDTH * 8
        return campaigns * WIDTH * 8
