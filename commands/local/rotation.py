"""Bounded broker memory for `adpulse up`: the events flow through a topic per time window.

tansu's memory storage keeps every message until its topic is deleted (it has no retention and
no DeleteRecords), so at 2,000 events/s it grew by about 35 MB a minute. Here the generator
writes to a topic per window (`ad-events.<run>.<n>`); when a window ends the generator moves
to the next topic, a new consumer starts on it, and the old topic is deleted once its consumer
has committed every partition to the end. The broker thus holds about two windows of events,
and nothing is deleted before it is in ClickHouse.

Topic names carry the run, so batch tokens and `ingest_state` keys never meet those of an
earlier run whose broker (and offsets) are gone.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from adpulse.clickhouse.client import ClickHouseClient
from adpulse.generate import TopicFile
from adpulse.kafka.topics import apply_topics, delete_topic, unread_partitions
from adpulse.settings import Settings
from consumers.consumer import IngestConsumer
from consumers.metrics import ConsumerMetrics

log = logging.getLogger("adpulse.up.rotation")

# How often a finished window is checked for being fully committed.
_DRAIN_CHECK_S = 1.0
# How long stopping waits for the consumers to commit what the generator sent.
CLOSE_DRAIN_S = 30.0


@dataclass
class Window:
    """One topic, the consumer reading it and its own consumer group."""

    index: int
    settings: Settings
    consumer: IngestConsumer
    thread: threading.Thread
    opened: float

    @property
    def topic(self) -> str:
        return self.settings.events_topic


@dataclass
class Totals:
    rows: int = 0
    dead_letters: int = 0
    windows_dropped: int = 0


@dataclass
class RotatingIngest:
    """Consumers for the current window (and the one draining before it).

    Call `tick()` from the thread that owns the generator; it never blocks on a drain.
    """

    settings: Settings
    client: ClickHouseClient
    metrics: ConsumerMetrics
    topic_file: TopicFile | None  # None: no generator to move, so one topic, never rotated
    window_s: float
    run_id: str = field(default_factory=lambda: time.strftime("%Y%m%dT%H%M%S"))
    totals: Totals = field(default_factory=Totals)
    _windows: list[Window] = field(default_factory=list)
    _next_check: float = 0.0

    def start(self) -> None:
        self._open(0)

    @property
    def current(self) -> Window:
        return self._windows[-1]

    @property
    def rows(self) -> int:
        return self.totals.rows + sum(w.consumer.summary.rows for w in self._windows)

    @property
    def dead_letters(self) -> int:
        return self.totals.dead_letters + sum(
            w.consumer.summary.dead_letters for w in self._windows
        )

    def tick(self, now: float | None = None) -> None:
        """Open the next window when this one is due; drop drained windows."""
        now = time.monotonic() if now is None else now
        if self.topic_file is None:
            return
        if len(self._windows) == 1 and now - self.current.opened >= self.window_s:
            # The gauges (rate, freshness, lag) speak for the current window's consumer alone.
            self.current.consumer.metrics = self.metrics.counters_only()
            self._open(self.current.index + 1)
        if len(self._windows) > 1 and now >= self._next_check:
            self._next_check = now + _DRAIN_CHECK_S
            try:
                self._drop_if_drained(self._windows[0])
            except Exception:  # a failed check or delete is tried again next tick
                log.exception("could not drop window %s yet", self._windows[0].topic)

    def close(self, drain_s: float = CLOSE_DRAIN_S) -> list[str]:
        """Stop every consumer once it has committed its topic to the end (the generator has
        stopped by now): the local broker keeps nothing after this run, so what is left unread
        is lost. Waits up to `drain_s` s; returns the topics it could not drain."""
        deadline = time.monotonic() + drain_s
        undrained = []
        for window in self._windows:
            while drain_s > 0 and unread_partitions(
                window.settings, window.topic, window.settings.consumer_group
            ):
                if time.monotonic() > deadline or not window.thread.is_alive():
                    undrained.append(window.topic)
                    log.warning("%s: stopped with events left unread", window.topic)
                    break
                time.sleep(0.2)
            window.consumer.stop()
        for window in self._windows:
            window.thread.join(30)
        return undrained

    def _open(self, index: int) -> None:
        settings = self.settings
        if self.topic_file is not None:
            topic = f"{settings.events_topic}.{self.run_id}.{index}"
            group = f"{settings.consumer_group}.{topic}"
            settings = settings.model_copy(update={"events_topic": topic, "consumer_group": group})
        apply_topics(settings)
        consumer = IngestConsumer(
            settings, self.client, metrics=self.metrics, name=f"adpulse-up-{index}"
        )
        thread = threading.Thread(target=consumer.run, name=f"consumer-{index}", daemon=True)
        thread.start()
        self._windows.append(Window(index, settings, consumer, thread, time.monotonic()))
        if self.topic_file is not None:
            self.topic_file.point_to(settings.events_topic)
        log.info("window %d: events now go to %s", index, settings.events_topic)

    def _drop_if_drained(self, old: Window) -> None:
        assert self.topic_file is not None  # only rotated windows are ever dropped
        if self.topic_file.acknowledged() != self.current.topic:
            return  # the generator has not yet delivered its last message to the old topic
        if unread_partitions(old.settings, old.topic, old.settings.consumer_group):
            return
        old.consumer.stop()
        old.thread.join(30)
        delete_topic(old.settings, old.topic)
        self._windows.remove(old)
        self.totals.rows += old.consumer.summary.rows
        self.totals.dead_letters += old.consumer.summary.dead_letters
        self.totals.windows_dropped += 1
        log.info("window %d: %s committed to the end and deleted", old.index, old.topic)
