"""The rollups held in memory (api/hot/) answer exactly what the SQL path answers.

Against the seeded chDB database: every grouping the API uses, ranges on and off hour and
minute boundaries, inside and past the minute rollup's TTL, campaigns with and without events.
Then the promises that make it safe: blocks read once and shared, never used past their TTL,
answers cached no longer than their oldest block allows, and failures reaching every waiter.
The parts on their own: tests/api/hot/.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from adpulse.clickhouse.client import Row
from api.cache import MemoryBackend, ResponseCache, note_data_read_at
from api.hot import HotRollups
from api.metrics import ApiMetrics
from api.queries import sql
from api.queries.plan import Segment, Source, minute_rollup_floor, plan
from api.queries.ranges import DAY, HOUR, MINUTE, Granularity, TimeRange, floor
from api.runner import QueryRunner
from tests.api.conftest import Seeded
from tests.api.support import RecordingClient

CAMPAIGNS = [None, 3, 17, 999]  # 999 has no events


def make_hot(
    seeded: Seeded,
    recording: RecordingClient | None = None,
    *,
    clock: Callable[[], float] | None = None,
    max_bytes: int = 256 << 20,
    database: str | None = None,
) -> tuple[HotRollups, QueryRunner]:
    client = recording or RecordingClient(seeded.client)
    runner = QueryRunner(client, ApiMetrics(), timeout_s=30, send_limits=True)
    hot = HotRollups(
        database or seeded.client.database,
        runner,
        horizon=timedelta(hours=72),
        ttl_s=60,
        max_bytes=max_bytes,
        **({"wall_clock": clock} if clock else {}),
    )
    return hot, runner


def windows(now: datetime) -> list[TimeRange]:
    """Minute-aligned windows: within one hour, across hours and midnight, past the minute TTL."""
    last = floor(now, MINUTE)
    rng = random.Random(5)
    found = [
        TimeRange(last - timedelta(hours=24), last),
        TimeRange(last - timedelta(minutes=37), last - timedelta(minutes=3)),
        TimeRange(floor(last, HOUR) - 5 * HOUR, floor(last, HOUR)),
        TimeRange(last - timedelta(hours=70, minutes=13), last - timedelta(hours=47, minutes=1)),
        # a whole UTC day inside, from the daily rollup
        TimeRange(floor(last, DAY) - DAY - 3 * HOUR - 9 * MINUTE, floor(last, DAY) + 11 * MINUTE),
    ]
    for _ in range(4):
        end = last - timedelta(minutes=rng.randrange(0, 2000))
        found.append(TimeRange(end - timedelta(minutes=rng.randrange(1, 1500)), end))
    return found


def sql_rows(runner: QueryRunner, segments: list[Segment], **kw: object) -> list[Row]:
    query = sql.totals(runner.client.database, segments, **kw)  # type: ignore[arg-type]
    return asyncio.run(runner.rows(query, endpoint="test"))


def test_totals_equal_the_sql_path_for_every_grouping(seeded: Seeded) -> None:
    hot, runner = make_hot(seeded)
    kept = minute_rollup_floor(seeded.now, timedelta(days=2))
    compared = 0
    for window in windows(seeded.now):
        both = plan(window, kept) + plan(window.previous(), kept)
        for campaign_id in CAMPAIGNS:
            cases: list[tuple[list[Segment], sql.GroupBy]] = [
                (plan(window, kept), None),
                (both, sql.SplitAt(window.start)),
            ]
            hours = TimeRange(floor(window.start, HOUR), floor(window.end, HOUR) + HOUR)
            cases.append((plan(hours, kept, Granularity.HOUR), Granularity.HOUR))
            if window.span <= 2 * HOUR:
                cases.append((plan(window, kept, Granularity.MINUTE), Granularity.MINUTE))
            for segments, group in cases:
                got = asyncio.run(
                    hot.totals(segments, seeded.now, group=group, campaign_id=campaign_id)
                )
                if got is None:  # declined: only when a segment is older than the horizon
                    assert min(s.start for s in segments) < seeded.now - hot.horizon
                    continue
                want = sql_rows(runner, segments, group=group, campaign_id=campaign_id)
                if isinstance(group, sql.SplitAt):  # SQL leaves out a period without rows
                    nothing = (0,) * 5
                    assert {r[0]: r[1:] for r in got} == {
                        k: dict((r[0], r[1:]) for r in want).get(k, nothing) for k in (0, 1)
                    }
                else:
                    assert got == want, (window, group, campaign_id)
                compared += 1
        ids, sums = asyncio.run(hot.per_campaign(plan(window, kept), seeded.now))  # type: ignore[misc]
        want = sql_rows(runner, plan(window, kept), group="campaign_id")
        assert [(i, *s) for i, s in zip(ids.tolist(), sums.tolist(), strict=True)] == want
    assert compared > 80
    reads_daily = [
        w for w in windows(seeded.now) if any(s.source is Source.DAILY for s in plan(w, kept))
    ]
    assert reads_daily, "a window must read the daily rollup"
    assert asyncio.run(hot.totals(plan(reads_daily[0], kept), seeded.now)) is not None
    assert any(r[1] for r in want), "the windows must hold events"


@pytest.mark.parametrize("by", [sql.Dimension.COUNTRY, sql.Dimension.DEVICE_TYPE])
def test_breakdowns_equal_the_sql_path(seeded: Seeded, by: sql.Dimension) -> None:
    hot, runner = make_hot(seeded)
    last_hour = floor(seeded.now, HOUR) + HOUR
    for hours_back, span in [(0, 24), (3, 5), (30, 1), (60, 12)]:
        end = last_hour - hours_back * HOUR
        window = TimeRange(end - span * HOUR, end)
        for campaign_id in CAMPAIGNS:
            for limit in (2, 100):
                query = sql.breakdown(
                    seeded.client.database, window, by, campaign_id=campaign_id, limit=limit
                )
                want = asyncio.run(runner.rows(query, endpoint="test"))
                got = asyncio.run(
                    hot.breakdown(window, by, seeded.now, campaign_id=campaign_id, limit=limit)
                )
                assert got == want, (window, campaign_id, limit)


def test_blocks_are_read_once_and_shared_by_concurrent_questions(seeded: Seeded) -> None:
    recording = RecordingClient(seeded.client, delay_s=0.05)  # reads overlap the questions
    hot, runner = make_hot(seeded, recording)
    kept = minute_rollup_floor(seeded.now, timedelta(days=2))
    end = floor(seeded.now, HOUR) - 2 * HOUR

    async def ask_many() -> list[object]:
        # 20 windows that differ only in their minute edges: the same hours underneath.
        shifted = [TimeRange(end - 6 * HOUR - m * MINUTE, end - m * MINUTE) for m in range(1, 21)]
        asks = [
            hot.totals(plan(w, kept), seeded.now, campaign_id=17 if i % 2 else None)
            for i, w in enumerate(shifted)
        ]
        return await asyncio.gather(*asks)

    asyncio.run(ask_many())
    tables = Counter(s.split("FROM ")[1].split()[0] for s in recording.data_queries())
    db = seeded.client.database
    # One read per table, although 20 questions wanted the same blocks at once.
    assert tables == {f"{db}.campaign_hourly": 1, f"{db}.events_per_minute": 1}
    registry = runner.metrics.registry
    for table, reads in (("hourly", 1), ("minute", 1)):
        sample = registry.get_sample_value("adpulse_api_hot_block_reads_total", {"table": table})
        assert sample == reads
    assert registry.get_sample_value("adpulse_api_hot_bytes") == hot.store.bytes > 0
    recording.statements.clear()
    asyncio.run(ask_many())
    assert recording.data_queries() == []


def test_blocks_expire_after_their_ttl(seeded: Seeded) -> None:
    now = [1_000_000.0]
    recording = RecordingClient(seeded.client)
    hot, _ = make_hot(seeded, recording, clock=lambda: now[0])
    kept = minute_rollup_floor(seeded.now, timedelta(days=2))
    segments = plan(TimeRange(floor(seeded.now, HOUR) - 3 * HOUR, floor(seeded.now, HOUR)), kept)
    asyncio.run(hot.totals(segments, seeded.now))
    reads = len(recording.data_queries())
    now[0] += 59.9
    asyncio.run(hot.totals(segments, seeded.now))
    assert len(recording.data_queries()) == reads
    now[0] += 0.2
    asyncio.run(hot.totals(segments, seeded.now))
    assert len(recording.data_queries()) == 2 * reads


def test_an_aging_block_is_used_and_read_again_in_the_background(
    seeded: Seeded,
) -> None:
    now = [1_000_000.0]
    recording = RecordingClient(seeded.client, delay_s=0.2)
    hot, _ = make_hot(seeded, recording, clock=lambda: now[0])
    kept = minute_rollup_floor(seeded.now, timedelta(days=2))
    segments = plan(TimeRange(floor(seeded.now, HOUR) - 3 * HOUR, floor(seeded.now, HOUR)), kept)

    async def scenario() -> None:
        first = await hot.totals(segments, seeded.now)
        await hot.store.idle()
        reads = len(recording.data_queries())
        now[0] += 55  # past the refresh age of every block (0.5 to 0.9 of the TTL)
        started = asyncio.get_running_loop().time()
        assert await hot.totals(segments, seeded.now) == first
        assert asyncio.get_running_loop().time() - started < 0.1  # did not wait for a read
        await hot.store.idle()
        blocks = hot.store.blocks
        assert len(recording.data_queries()) == reads + len(blocks)  # one read per block
        assert all(b.read_at == now[0] for b in blocks.values())

    asyncio.run(scenario())


def test_an_answer_expires_when_its_oldest_data_does() -> None:
    now = [5_000.0]
    cache = ResponseCache(
        MemoryBackend(clock=lambda: 0.0), ApiMetrics(), lock_ttl_s=5, wall_clock=lambda: now[0]
    )

    async def compute() -> bytes:
        note_data_read_at(now[0] - 45)  # built from a block read 45 s ago
        return b"answer"

    async def ask() -> bool:
        return (await cache.fetch("k", 60, compute, endpoint="t"))[1]

    assert asyncio.run(ask()) is False
    now[0] += 14
    assert asyncio.run(ask()) is True  # 59 s after its data was read
    now[0] += 2
    assert asyncio.run(ask()) is False  # 61 s: recomputed, not served for 60 s more


def test_questions_it_should_not_answer_go_to_clickhouse(seeded: Seeded) -> None:
    hot, _ = make_hot(seeded)
    kept = minute_rollup_floor(seeded.now, timedelta(days=2))
    last = floor(seeded.now, MINUTE)
    too_old = TimeRange(last - timedelta(hours=73), last - timedelta(hours=60))
    future = TimeRange(last, last + timedelta(hours=3))
    assert asyncio.run(hot.totals(plan(too_old, kept), seeded.now)) is None
    assert asyncio.run(hot.totals(plan(future, kept), seeded.now)) is None
    # A per-minute chart of 10 hours would hold 10 hours by minute: ClickHouse answers it.
    long_minutes = TimeRange(floor(last, HOUR) - 10 * HOUR, floor(last, HOUR))
    segments = plan(long_minutes, kept, Granularity.MINUTE)
    assert asyncio.run(hot.totals(segments, seeded.now, group=Granularity.MINUTE)) is None
    assert (
        asyncio.run(
            hot.breakdown(too_old, sql.Dimension.COUNTRY, seeded.now, campaign_id=None, limit=5)
        )
        is None
    )
    assert (
        asyncio.run(
            hot.breakdown(
                TimeRange(floor(last, HOUR) - HOUR, floor(last, HOUR)),
                sql.Dimension.PUBLISHER_ID,
                seeded.now,
                campaign_id=None,
                limit=5,
            )
        )
        is None
    )


def test_the_memory_bound_holds_and_answers_stay_right(seeded: Seeded) -> None:
    hot, runner = make_hot(seeded, max_bytes=2 << 20)  # below two blocks by minute
    kept = minute_rollup_floor(seeded.now, timedelta(days=2))
    for window in windows(seeded.now)[:5]:
        segments = plan(window, kept)
        got = asyncio.run(hot.totals(segments, seeded.now, campaign_id=3))
        assert got == sql_rows(runner, segments, campaign_id=3)
        assert hot.store.bytes <= hot.max_bytes or len(hot.store.blocks) == 1


def test_a_failed_read_reaches_every_waiter_and_the_next_question_reads_again(
    seeded: Seeded,
) -> None:
    recording = RecordingClient(seeded.client)
    hot, _ = make_hot(seeded, recording, database="no_such_database")
    kept = minute_rollup_floor(seeded.now, timedelta(days=2))
    segments = plan(TimeRange(floor(seeded.now, HOUR) - 2 * HOUR, floor(seeded.now, HOUR)), kept)

    async def two_at_once() -> list[object]:
        asks = [hot.totals(segments, seeded.now) for _ in range(2)]
        return await asyncio.gather(*asks, return_exceptions=True)

    first = asyncio.run(two_at_once())
    assert all(isinstance(r, Exception) for r in first), first
    assert len(recording.data_queries()) == 1  # one read, failing for both
    asyncio.run(two_at_once())
    assert len(recording.data_queries()) == 2  # nothing failed was kept


def test_reads_cover_the_hours_between_edges_only_while_they_fit_in_half_the_memory(
    seeded: Seeded,
) -> None:
    kept = minute_rollup_floor(seeded.now, timedelta(days=2))
    end = floor(seeded.now, HOUR) - 2 * HOUR
    segments = plan(TimeRange(end - 24 * HOUR - 7 * MINUTE, end - 7 * MINUTE), kept)
    minute_reads = []
    now = [1_000_000.0]
    for max_bytes in (256 << 20, 1 << 20):
        recording = RecordingClient(seeded.client)
        hot, runner = make_hot(seeded, recording, clock=lambda: now[0], max_bytes=max_bytes)
        asyncio.run(hot.totals(segments, seeded.now))  # learns how many campaigns there are
        now[0] += 61  # every block expired: all read again
        recording.statements.clear()
        answer = asyncio.run(hot.totals(segments, seeded.now))
        minute_reads.append(sum("events_per_minute" in s for s in recording.data_queries()))
        assert answer == sql_rows(runner, segments)
        if max_bytes > 1 << 20:  # the edge hours and the 23 between, in one read
            fresh = [k for k, b in hot.store.blocks.items() if b.read_at == now[0]]
            assert len([k for k in fresh if k[0] == "minute"]) == 25
    assert minute_reads == [1, 2]  # with too little memory: each edge hour on its own
