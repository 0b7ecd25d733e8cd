"""`adpulse generate`: contract events at a steady rate into the events topic."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adpulse.errors import AdpulseError
from adpulse.events import Event, encode
from adpulse.kafka.bad_messages import BAD_KINDS
from adpulse.kafka.client_config import kafka_config
from adpulse.settings import Settings
from adpulse.traffic import TrafficModel, iter_events

TICK_S = 0.01


@dataclass
class GenerateSummary:
    sent: int = 0
    bad: int = 0
    seconds: float = 0.0
    delivery_errors: int = 0

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


class TopicFile:
    """The topic to produce to, named in a file that another process rewrites.

    `adpulse up` moves the generator to a new topic now and then, so that the local broker can
    drop the old one (`commands.local.rotation`). The generator writes the topic it produces to
    into FILE.ack once everything it sent to the previous topic is delivered.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ack = path.with_name(path.name + ".ack")
        self._seen: tuple[int, str] | None = None

    def wanted(self) -> str:
        """The topic the file names now (re-read only when the file changed)."""
        stamp = os.stat(self.path).st_mtime_ns
        if self._seen is None or self._seen[0] != stamp:
            self._seen = (stamp, self.path.read_text().strip())
        return self._seen[1]

    def point_to(self, topic: str) -> None:
        """Ask the generator to move to `topic` (the side that owns the topics calls this)."""
        _replace(self.path, topic)

    def acknowledge(self, topic: str) -> None:
        """Say that `topic` is where messages go now and the previous one is fully delivered."""
        _replace(self.ack, topic)

    def acknowledged(self) -> str | None:
        """The topic the generator last acknowledged, if any."""
        try:
            return self.ack.read_text().strip()
        except FileNotFoundError:
            return None


def _replace(path: Path, text: str) -> None:
    part = path.with_name(path.name + ".part")
    part.write_text(text)
    part.replace(path)  # atomic: a reader sees the old or the new text, never half


def generate(
    settings: Settings,
    *,
    rate: float,
    duration: float | None,
    bad_fraction: float = 0.0,
    seed: int | None = None,
    model: TrafficModel | None = None,
    progress: Callable[[GenerateSummary], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    topic_file: TopicFile | None = None,
) -> GenerateSummary:
    """Produce `rate` messages/s for `duration` s (None: until `should_stop`), keyed by event_id
    so a producer retry lands in the same partition. A `bad_fraction` share is malformed.
    With `topic_file`, produce to the topic it names and follow it when it changes."""
    from confluent_kafka import Producer

    if rate <= 0:
        raise AdpulseError(f"--rate must be positive, got {rate}")
    if not 0 <= bad_fraction <= 1:
        raise AdpulseError(f"--bad-fraction must be within 0..1, got {bad_fraction}")
    rng = random.Random(seed)
    events = iter_events(model or TrafficModel(), rng, lambda: int(time.time() * 1000))
    summary = GenerateSummary()
    errors: list[Any] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(err)

    producer = Producer(
        kafka_config(
            settings,
            **{
                "linger.ms": 20,
                "compression.type": "lz4",
                "enable.idempotence": True,
                "queue.buffering.max.messages": 1_000_000,
            },
        )
    )
    topic = settings.events_topic
    if topic_file is not None:
        topic = topic_file.wanted()
        topic_file.acknowledge(topic)
    started = time.monotonic()
    last_report = started
    previous: Event | None = None
    try:
        while not should_stop():
            if topic_file is not None and topic_file.wanted() != topic:
                # Everything sent to the old topic is delivered before we say we left it.
                producer.flush(30)
                topic = topic_file.wanted()
                topic_file.acknowledge(topic)
            now = time.monotonic()
            elapsed = now - started
            if duration is not None and elapsed >= duration:
                break
            due = int(rate * elapsed) - summary.sent
            for _ in range(max(due, 0)):
                event = next(events)
                if bad_fraction and rng.random() < bad_fraction:
                    kind = rng.choice(BAD_KINDS)
                    source = previous if kind.name == "duplicate_event_id" and previous else event
                    value, key = kind.make(source, rng), source.event_id.encode()
                    summary.bad += 1
                else:
                    value, key = encode(event), event.event_id.encode()
                    previous = event
                _produce(producer, topic, value, key, on_delivery)
                summary.sent += 1
            producer.poll(0)
            if progress and now - last_report >= 0.25:
                summary.seconds = elapsed
                progress(summary)
                last_report = now
            time.sleep(TICK_S)
    finally:
        producer.flush(30)
        summary.seconds = time.monotonic() - started
        summary.delivery_errors = len(errors)
    if errors:
        raise AdpulseError(
            f"{len(errors)} of {summary.sent} messages were not delivered to "
            f"{settings.kafka_bootstrap}: {errors[0]}"
        )
    return summary


def _produce(producer: Any, topic: str, value: bytes, key: bytes, on_delivery: Any) -> None:
    while True:
        try:
            producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
            return
        except BufferError:
            producer.poll(0.05)  # local queue full: wait for deliveries instead of failing
