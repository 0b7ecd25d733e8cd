"""The consumer against a real broker and real chDB: exact counts through the happy path,
ClickHouse outages, and a group whose membership changes mid-stream."""

from __future__ import annotations

import time
from collections.abc import Callable

from adpulse.clickhouse.client import ClickHouseClient
from adpulse.settings import Settings
from tests.consumers.conftest import Running, count_rows, wait_for
from tests.support.events import random_events
from tests.support.kafka import produce_events
from tests.support.oracle import inspect

HOUR_MS = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


def test_n_events_in_exactly_n_rows_and_rollups_agree(
    schema: ClickHouseClient,
    settings_for: Callable[..., Settings],
    start_consumer: Callable[..., Running],
) -> None:
    settings = settings_for(topic_partitions=3, batch_max_rows=3_000)
    events = random_events(20_000, now_ms() - 3 * HOUR_MS, 3 * HOUR_MS, seed=21)
    produce_events(settings, events)

    summary = start_consumer(settings, schema, stop_after_idle=3).thread
    summary.join(120)

    verdict = inspect(schema)
    assert verdict.rows == 20_000
    assert verdict.ids == {e.event_id for e in events}
    assert all(verdict.rollups_match.values()), verdict.rollups_match


def test_clickhouse_outage_pauses_bounded_and_loses_nothing(
    schema: ClickHouseClient,
    settings_for: Callable[..., Settings],
    start_consumer: Callable[..., Running],
) -> None:
    settings = settings_for(topic_partitions=2, batch_max_rows=1_000, batch_interval_s=0.5)
    first = random_events(4_000, now_ms() - HOUR_MS, HOUR_MS, seed=31)
    later = random_events(30_000, now_ms() - HOUR_MS, HOUR_MS, seed=32)
    run = start_consumer(settings, schema)
    produce_events(settings, first)
    wait_for(lambda: count_rows(schema) == 4_000, what="first events")

    # A real ClickHouse failure: the table disappears, every insert fails until it is back.
    schema.command(f"DETACH TABLE {schema.database}.events")
    produce_events(settings, later)
    metrics = run.consumer.metrics
    wait_for(lambda: metrics.paused._value.get() == 1, what="consumer to pause")
    peak = 0.0
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        peak = max(peak, metrics.buffered_rows._value.get())
        time.sleep(0.1)
    failures = metrics.insert_failures._value.get()
    schema.command(f"ATTACH TABLE {schema.database}.events")

    wait_for(lambda: count_rows(schema) == 34_000, timeout=90, what="all events after outage")
    run.stop()
    verdict = inspect(schema)
    assert verdict.rows == 34_000
    assert verdict.ids == {e.event_id for e in first + later}
    assert all(verdict.rollups_match.values())
    assert failures >= 2, "the outage should have caused retried inserts"
    # Bounded: per partition one sealed and one open batch, each at most max rows.
    assert peak <= 2 * 3 * settings.batch_max_rows, peak
    assert metrics.paused._value.get() == 0


def test_member_joining_and_leaving_mid_stream_keeps_counts_exact(
    schema: ClickHouseClient,
    settings_for: Callable[..., Settings],
    start_consumer: Callable[..., Running],
) -> None:
    settings = settings_for(topic_partitions=4, batch_max_rows=2_000, batch_interval_s=0.5)
    waves = [random_events(6_000, now_ms() - HOUR_MS, HOUR_MS, seed=40 + i) for i in range(3)]

    first = start_consumer(settings, schema, name="first")
    produce_events(settings, waves[0])
    wait_for(lambda: count_rows(schema) >= 2_000, what="first member to write")

    second = start_consumer(settings, schema, name="second")
    # The join is done when both hold partitions. Leaving before that would stop the group's
    # leader mid-rebalance, after which tansu (the local broker) never completes another.
    wait_for(
        lambda: bool(first.consumer.partitions and second.consumer.partitions),
        what="the rebalance that gives the second member partitions",
    )
    produce_events(settings, waves[1])
    wait_for(lambda: count_rows(schema) >= 12_000 - 2_000, what="both members to write")

    first.stop()  # leaves the group; its partitions move to the second member
    produce_events(settings, waves[2])
    wait_for(lambda: count_rows(schema) == 18_000, timeout=90, what="all events")
    time.sleep(settings.batch_interval_s * 3)
    second.stop()

    verdict = inspect(schema)
    assert verdict.rows == 18_000
    assert verdict.ids == {e.event_id for w in waves for e in w}
    assert all(verdict.rollups_match.values())
    assert second.result[0].rows > 0 and first.result[0].rows > 0
