"""Kafka helpers for tests: unique topics per test, producing events, reading dead letters."""

from __future__ import annotations

import uuid
from typing import Any

from adpulse.events import Event, encode
from adpulse.kafka.topics import apply_topics
from adpulse.settings import Settings, load_settings


def isolated_settings(bootstrap: str, clickhouse_url: str, **overrides: Any) -> Settings:
    """Settings with a topic pair and consumer group no other test uses."""
    suffix = uuid.uuid4().hex[:10]
    settings = load_settings(
        kafka_bootstrap=bootstrap,
        clickhouse_url=clickhouse_url,
        events_topic=f"ev-{suffix}",
        dlq_topic=f"dlq-{suffix}",
        consumer_group=f"grp-{suffix}",
        metrics_port=0,
        **{"topic_partitions": 2, "batch_interval_s": 1.0, **overrides},
    )
    apply_topics(settings)
    return settings


def produce(
    settings: Settings, messages: list[tuple[bytes | None, bytes]], one_per_batch: bool = False
) -> None:
    """Produce (key, value) pairs and wait until every one is acknowledged.

    `one_per_batch` sends each message in its own record batch. tansu answers ListOffsets
    (the partition end a consumer asks the broker for) with the last batch's base offset + 1,
    where Kafka answers the offset after its last record; with one record a batch, they agree.
    """
    from confluent_kafka import Producer

    errors: list[Any] = []
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "linger.ms": 5,
            "enable.idempotence": True,
            "log.connection.close": False,
            **({"batch.num.messages": 1} if one_per_batch else {}),
        }
    )
    for key, value in messages:
        while True:
            try:
                producer.produce(
                    settings.events_topic,
                    value=value,
                    key=key,
                    on_delivery=lambda err, _m: errors.append(err) if err else None,
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert not errors, errors[:3]


def produce_events(settings: Settings, events: list[Event], one_per_batch: bool = False) -> None:
    produce(settings, [(e.event_id.encode(), encode(e)) for e in events], one_per_batch)


def read_topic(settings: Settings, topic: str, expected: int, timeout: float = 20.0) -> list[Any]:
    """Read `expected` messages from the start of `topic` (or what arrives before timeout)."""
    import time

    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "log.connection.close": False,
        }
    )
    # Plain assignment from offset 0: a reader needs no group (and tansu is slow to form one).
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expected and time.monotonic() < deadline:
            out.extend(m for m in consumer.consume(1000, timeout=0.5) if m.error() is None)
    finally:
        consumer.close()
    return out
