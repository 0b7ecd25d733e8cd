"""`adpulse generate`: contract events at a steady rate into the events topic."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
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
) -> GenerateSummary:
    """Produce `rate` messages/s for `duration` s (None: until `should_stop`), keyed by event_id
    so a producer retry lands in the same partition. A `bad_fraction` share is malformed."""
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
    started = time.monotonic()
    last_report = started
    previous: Event | None = None
    try:
        while not should_stop():
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
                _produce(producer, settings.events_topic, value, key, on_delivery)
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
