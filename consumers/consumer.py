"""The ingest consumer: Kafka partitions to ClickHouse micro-batches, exactly once in effect.

Per partition one batch is open (filling) and at most one is sealed (being written). Writing a
sealed batch is: record its offset range in `ingest_state`, insert it with a token derived
from that range, deliver its dead letters, then commit the offset after it. Auto-commit and
auto offset store are off, so nothing is committed that ClickHouse has not acknowledged.
While ClickHouse fails, partitions are paused (memory stays bounded) and the write is retried
with capped exponential backoff and full jitter.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from adpulse import names
from adpulse.clickhouse.client import ClickHouseClient
from adpulse.events import decode_many
from adpulse.kafka.client_config import kafka_config
from adpulse.settings import Settings
from consumers.batch import DeadLetter, PartitionBatch, RecentIds
from consumers.cloudwatch import Observation
from consumers.dead_letters import DeadLetterProducer
from consumers.faults import CrashPoints
from consumers.metrics import ConsumerMetrics
from consumers.phases import CpuPhases
from consumers.state import IngestState

log = logging.getLogger("adpulse.consumer")

INSERT_SETTINGS = {
    "insert_deduplicate": 1,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    # In a cluster `events` is Distributed: write through synchronously so the
    # acknowledgement means the shard has the block (and dedups it by token).
    "distributed_foreground_insert": 1,
}
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
REVOKE_FLUSH_BUDGET_S = 10.0
# librdkafka's statistics (and so the lag) come this often; while paused, the consumer asks the
# broker for the partition ends itself on the same period.
STATS_INTERVAL_S = 5.0


def consumer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """The ingest consumer's librdkafka settings (`bench ingest`'s bare consumer fetches with
    the same), plus the caller's own."""
    return kafka_config(
        settings,
        **{
            "group.id": settings.consumer_group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            # Bounds what librdkafka prefetches while partitions are paused.
            "queued.max.messages.kbytes": 32_768,
            # librdkafka 2.x backs off fetching for up to 1 s whenever 100k messages are
            # queued, which starves a consumer that drains 10k at a time: keep fetching until
            # the byte bound above is the only limit.
            "queued.min.messages": 1_000_000,
            "fetch.queue.backoff.ms": 10,
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1_000,
            **extra,
        },
    )


@dataclass
class PartitionState:
    open: PartitionBatch
    sealed: PartitionBatch | None = None
    recent: RecentIds = field(default_factory=RecentIds)
    rewind_to: int | None = None
    newest_ms: int = 0  # the newest event time written from this partition
    committed: int = -1  # the next offset committed for this partition (-1: none yet)


@dataclass
class Summary:
    rows: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    batches: int = 0


class IngestConsumer:
    """One group member. `run()` blocks until `stop()` (or idle timeout), then flushes."""

    def __init__(
        self,
        settings: Settings,
        client: ClickHouseClient,
        *,
        name: str | None = None,
        metrics: ConsumerMetrics | None = None,
        stop_after_idle: float | None = None,
        crash_points: CrashPoints | None = None,
    ) -> None:
        from confluent_kafka import Consumer

        self.settings = settings
        self.client = client
        self.name = name or f"{socket.gethostname()}-{random.getrandbits(32):08x}"
        self.metrics = metrics or ConsumerMetrics()
        self.stop_after_idle = stop_after_idle
        self.crash = crash_points or CrashPoints(None)
        self._crash_mid_batch = self.crash.crash_at == "mid_batch"
        self.state = IngestState(client, self.name)
        self.summary = Summary()
        self._stop = threading.Event()
        self._partitions: dict[int, PartitionState] = {}
        self._retry_at = 0.0
        self._failures = 0
        self._paused = False
        self._newest_ms = 0
        self._max_lag: int | None = None
        self._lag_measured = 0.0
        self._rate_window: list[tuple[float, int]] = []
        self._activity = time.monotonic()
        self.cpu = CpuPhases()
        self._dead = DeadLetterProducer(settings)
        self._consumer = Consumer(
            consumer_config(
                settings,
                **{
                    "client.id": self.name,
                    "statistics.interval.ms": int(STATS_INTERVAL_S * 1000),
                    "stats_cb": self._on_stats,
                },
            )
        )

    @property
    def partitions(self) -> list[int]:
        """The partitions this member holds now (empty before its first assignment)."""
        return sorted(self._partitions)

    # -- lifecycle -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask `run` to flush, commit and return. Safe from signal handlers and other threads."""
        self._stop.set()

    def run(self) -> Summary:
        topic = self.settings.events_topic
        self._consumer.subscribe(
            [topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        self._activity = time.monotonic()
        self.cpu = cpu = CpuPhases()
        try:
            while not self._stop.is_set():
                messages = self._consumer.consume(num_messages=10_000, timeout=0.1)
                cpu.lap("fetch")
                now = time.monotonic()
                if messages:
                    self._activity = now
                    self._accept(messages)
                self._write_due(now)
                self._update_gauges(now)
                cpu.lap("other")
                if (
                    self.stop_after_idle is not None
                    and now - self._activity >= self.stop_after_idle
                    and self._partitions
                    and all(s.open.empty and s.sealed is None for s in self._partitions.values())
                ):
                    break
        finally:
            self._shutdown()
        return self.summary

    def _shutdown(self) -> None:
        deadline = time.monotonic() + REVOKE_FLUSH_BUDGET_S
        self._flush_all(deadline)
        self._consumer.close()  # leaves the group so partitions move at once
        self._dead.close()

    # -- accepting messages --------------------------------------------------------------------

    def _accept(self, messages: list[Any]) -> None:
        from confluent_kafka import Message

        # The hot loop (100k+ messages a second): the chunk is decoded at once, into columns
        # (`decode_many`). Then each run of one partition's messages between two rejected ones
        # goes into its batch at once (`PartitionBatch.add_rows`) when nothing about it needs a
        # decision per message; the rest goes one message at a time (`_accept_range`).
        now_ms = int(time.time() * 1000)
        values = list(map(Message.value, messages))
        decoded = decode_many(values, now_ms=now_ms)
        self.cpu.lap("decode")
        if self._crash_mid_batch or any(map(Message.error, messages)):
            self._accept_range(messages, values, decoded, 0, len(messages))
            self.cpu.lap("batch")
            return
        cuts = sorted(decoded.rejected)
        max_rows, max_bytes = self.settings.batch_max_rows, self.settings.batch_max_bytes
        partitions = self._partitions
        start = 0
        for partition, run in groupby(map(Message.partition, messages)):
            stop = start + len(list(run))
            state = partitions.get(partition) if partition is not None else None
            at = start
            # Segments between rejected messages; each rejected one goes the slow way.
            for cut in [c for c in cuts if start <= c < stop] + [stop]:
                if at < cut:
                    batch = state.open if state is not None else None
                    # Rejected messages (None among them) are cut out: these are all bytes.
                    size = sum(map(len, values[at:cut]))  # type: ignore[arg-type]
                    if (
                        batch is None
                        or state is None
                        or state.rewind_to is not None
                        or batch.target_last is not None
                        or batch.rows + (cut - at) > max_rows
                        or batch.bytes + size >= max_bytes
                        or not batch.add_rows(
                            messages[at].offset(),
                            messages[cut - 1].offset(),
                            size,
                            decoded,
                            at,
                            cut,
                            state.recent,
                        )
                    ):
                        self._accept_range(messages, values, decoded, at, cut)
                if cut < stop:
                    self._accept_range(messages, values, decoded, cut, cut + 1)
                at = cut + 1
            start = stop
        self.cpu.lap("batch")

    def _accept_range(
        self, messages: list[Any], values: list[Any], decoded: Any, first: int, stop: int
    ) -> None:
        """Messages `first` to `stop` (exclusive) of a fetched chunk, one at a time."""
        from confluent_kafka import KafkaError

        rejected = decoded.rejected
        max_rows, max_bytes = self.settings.batch_max_rows, self.settings.batch_max_bytes
        partitions = self._partitions
        crash_mid_batch = self._crash_mid_batch
        for index in range(first, stop):
            message = messages[index]
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("kafka: %s", error)
                continue
            partition = message.partition()
            state = partitions.get(partition)
            if state is None:
                continue  # revoked while this message was in flight
            if state.rewind_to is not None:
                continue  # over the memory bound: will be fetched again after the rewind
            offset = message.offset()
            batch = state.open
            if batch.target_last is not None:
                full = offset > batch.target_last  # a rebuilt batch ends where it was recorded
            else:
                full = batch.full(max_rows, max_bytes)
            if full:
                if state.sealed is not None:
                    # Both slots taken: bounded memory wins, Kafka keeps the rest for later.
                    self._rewind(partition, state, offset)
                    continue
                self._seal(state)
                batch = state.open
            value = values[index]
            size = len(value) if value else 0
            rejection = rejected.get(index) if rejected else None
            if rejection is None:
                if not batch.add_row(offset, size, decoded, index, state.recent):
                    self.metrics.duplicates.inc()
                    self.summary.duplicates += 1
            else:
                batch.add_dead(
                    DeadLetter(
                        value=value,
                        key=message.key(),
                        headers=list(message.headers() or []),
                        offset=offset,
                        reason=rejection.label(),
                        detail=rejection.detail,
                    ),
                    size,
                )
            if crash_mid_batch:
                self.crash.reached("mid_batch")

    def _rewind(self, partition: int, state: PartitionState, offset: int) -> None:
        """Drop this and later prefetched messages; Kafka serves them again after resume."""
        from confluent_kafka import TopicPartition

        state.rewind_to = offset
        self._consumer.seek(TopicPartition(self.settings.events_topic, partition, offset))

    def _seal(self, state: PartitionState) -> None:
        sealed = state.open
        state.sealed = sealed
        state.open = PartitionBatch(sealed.topic, sealed.partition, time.monotonic())

    # -- writing -------------------------------------------------------------------------------

    def _write_due(self, now: float) -> None:
        if now < self._retry_at:
            return
        s = self.settings
        for state in list(self._partitions.values()):
            if state.sealed is None and state.open.due(
                now, s.batch_interval_s, s.batch_max_rows, s.batch_max_bytes
            ):
                self._seal(state)
            if state.sealed is not None and not self._write(state):
                return
        if self._paused:
            self._set_paused(False)

    def _write(self, state: PartitionState) -> bool:
        """Write the sealed batch; on failure schedule a retry and pause. True on success."""
        batch = state.sealed
        assert batch is not None and batch.first_offset is not None
        try:
            if batch.rows:
                self.state.record(
                    batch.topic, batch.partition, batch.first_offset, batch.last_offset, batch.token
                )
                self.crash.reached("before_insert")
                self.cpu.lap("other")
                columns = batch.columns()
                self.cpu.lap("columns")
                started = time.monotonic()
                self.client.insert(
                    names.EVENTS_TABLE,
                    columns,
                    settings={**INSERT_SETTINGS, "insert_deduplication_token": batch.token},
                )
                self.metrics.insert_seconds.observe(time.monotonic() - started)
                self.cpu.lap("insert")
                self.crash.reached("after_insert")
            self._dead.deliver(batch.partition, batch.dead)
            self._commit(batch.partition, batch.last_offset + 1)
            self.crash.reached("after_commit")
        # Any failure (network, server, broker) is handled the same way: the batch stays
        # sealed with its token, partitions pause, and the same write is retried later.
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)
            return False
        self._written(state, batch)
        return True

    def _commit(self, partition: int, next_offset: int) -> None:
        from confluent_kafka import TopicPartition

        self._consumer.commit(
            offsets=[TopicPartition(self.settings.events_topic, partition, next_offset)],
            asynchronous=False,
        )
        state = self._partitions.get(partition)
        if state is not None:
            state.committed = next_offset

    def _written(self, state: PartitionState, batch: PartitionBatch) -> None:
        state.sealed = None
        state.recent.remember(batch.seen())
        if state.rewind_to is not None:
            state.rewind_to = None
        self._failures = 0
        rows = batch.rows
        self.summary.rows += rows
        self.summary.batches += 1
        self.summary.dead_letters += len(batch.dead)
        self.metrics.rows.inc(rows)
        newest = batch.newest_ms()
        if newest is not None:
            self.metrics.batch_rows.observe(rows)
            state.newest_ms = max(state.newest_ms, newest)
            self._newest_ms = max(self._newest_ms, state.newest_ms)
        for letter in batch.dead:
            self.metrics.dead_letters.labels(letter.reason.split(":")[0]).inc()
        self._rate_window.append((time.monotonic(), rows))

    def _failed(self, exc: Exception) -> None:
        self._failures += 1
        self.metrics.insert_failures.inc()
        delay = random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**self._failures))
        self._retry_at = time.monotonic() + delay
        log.warning(
            "write failed (attempt %d), retrying in %.1f s: %s",
            self._failures,
            delay,
            str(exc).splitlines()[0][:300],
        )
        self._set_paused(True)

    def _set_paused(self, paused: bool) -> None:
        from confluent_kafka import TopicPartition

        parts = [TopicPartition(self.settings.events_topic, p) for p in self._partitions]
        if parts:
            (self._consumer.pause if paused else self._consumer.resume)(parts)
        if not paused:
            for state in self._partitions.values():
                if state.rewind_to is not None and state.sealed is None:
                    state.rewind_to = None
        self._paused = paused
        self.metrics.paused.set(1 if paused else 0)

    def _flush_all(self, deadline: float, only: set[int] | None = None) -> None:
        """Seal and write everything (for revocation and shutdown), within the deadline."""
        for partition, state in list(self._partitions.items()):
            if only is not None and partition not in only:
                continue
            while time.monotonic() < deadline:
                if state.sealed is None:
                    if state.open.empty:
                        break
                    self._seal(state)
                if not self._write(state):
                    time.sleep(min(max(self._retry_at - time.monotonic(), 0), 1.0))

    # -- rebalancing ---------------------------------------------------------------------------

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        """Rebuild any batch a previous owner recorded but did not commit, with its exact bounds."""
        committed = {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}
        in_flight = self.state.in_flight(
            self.settings.events_topic, [tp.partition for tp in partitions]
        )
        now = time.monotonic()
        for tp in partitions:
            record = in_flight.get(tp.partition)
            start = committed.get(tp.partition, -1)
            batch = PartitionBatch(tp.topic, tp.partition, now)
            if record is not None and (start < 0 or start <= record.last_offset):
                # Resume at the recorded start, so the rebuilt range and token match exactly.
                batch.target_last = record.last_offset
                tp.offset = record.first_offset
                log.info("partition %d: rebuilding batch %s", tp.partition, record.token)
            self._partitions[tp.partition] = PartitionState(open=batch, committed=start)
        consumer.assign(partitions)
        self._activity = time.monotonic()
        if self._paused:
            self._set_paused(True)

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        """Flush and commit what this member holds before its partitions move."""
        revoked = {tp.partition for tp in partitions}
        self._flush_all(time.monotonic() + REVOKE_FLUSH_BUDGET_S, only=revoked)
        self._drop(revoked)

    def _on_lost(self, consumer: Any, partitions: list[Any]) -> None:
        """Lost partitions may already have a new owner: drop, never commit."""
        self._drop({tp.partition for tp in partitions})

    def _drop(self, partitions: set[int]) -> None:
        """Forget partitions, and their events in the freshness this member reports: their new
        owner reports those, and a member left with none must not report an ever-growing age."""
        for partition in partitions:
            self._partitions.pop(partition, None)
        self._newest_ms = max((s.newest_ms for s in self._partitions.values()), default=0)

    # -- observability -------------------------------------------------------------------------

    def _on_stats(self, stats_json: str) -> None:
        import orjson

        if self._paused:
            # A paused partition is not fetched, so librdkafka's partition end (and the lag it
            # derives) stops moving just when ClickHouse is down and the lag matters most.
            # `_measure_lag_while_paused` asks the broker instead.
            return
        stats = orjson.loads(stats_json)
        topic = stats.get("topics", {}).get(self.settings.events_topic, {})
        lags = []
        for partition, info in topic.get("partitions", {}).items():
            lag = info.get("consumer_lag", -1)
            if partition != "-1" and lag >= 0:
                self.metrics.lag.labels(partition).set(lag)
                lags.append(lag)
        # One assignment, so `observe` on another thread reads a whole value.
        self._max_lag = max(lags) if lags else None

    def _measure_lag_while_paused(self, now: float) -> None:
        """Lag from each partition's end as the broker reports it now, against what this member
        committed, every `STATS_INTERVAL_S` while paused."""
        if not self._paused or now - self._lag_measured < STATS_INTERVAL_S:
            return
        from confluent_kafka import KafkaException, TopicPartition

        self._lag_measured = now
        lags = []
        for partition, state in list(self._partitions.items()):
            if state.committed < 0:
                continue
            try:
                _low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self.settings.events_topic, partition), timeout=1, cached=False
                )
            except KafkaException as exc:
                log.warning("partition %d: could not read its end offset: %s", partition, exc)
                continue
            lag = max(high - state.committed, 0)
            self.metrics.lag.labels(str(partition)).set(lag)
            lags.append(lag)
        self._max_lag = max(lags) if lags else self._max_lag

    def observe(self) -> Observation:
        """The largest partition lag and the newest event written; safe from any thread."""
        return Observation(max_lag=self._max_lag, newest_event_ms=self._newest_ms or None)

    def _update_gauges(self, now: float) -> None:
        self._measure_lag_while_paused(now)
        buffered = sum(
            s.open.rows + (s.sealed.rows if s.sealed else 0) for s in self._partitions.values()
        )
        self.metrics.buffered_rows.set(buffered)
        if self._newest_ms:
            self.metrics.freshness.set(time.time() - self._newest_ms / 1000)
        self._rate_window = [(t, n) for t, n in self._rate_window if now - t <= 10]
        self.metrics.rows_per_second.set(sum(n for _, n in self._rate_window) / 10)
