"""Create or check the events and dead-letter topics. Never silently changes a topic."""

from __future__ import annotations

from dataclasses import dataclass

from adpulse.errors import AdpulseError
from adpulse.settings import Settings

# Short-lived admin clients: warnings and errors only (their teardown notices are routine).
_ADMIN = {"socket.timeout.ms": 10_000, "log_level": 4}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]


@dataclass(frozen=True)
class TopicReport:
    name: str
    action: str  # created | ok | mismatch
    problems: tuple[str, ...] = ()


def desired_topics(settings: Settings) -> list[TopicSpec]:
    """What settings ask for: the events topic and its dead-letter topic."""
    return [
        TopicSpec(
            settings.events_topic,
            settings.topic_partitions,
            settings.topic_replication_factor,
            {"cleanup.policy": "delete", "retention.ms": str(settings.topic_retention_ms)},
        ),
        TopicSpec(
            settings.dlq_topic,
            # A handful is enough: dead letters are rare and read by people.
            min(settings.topic_partitions, 3),
            settings.topic_replication_factor,
            {"cleanup.policy": "delete", "retention.ms": str(settings.dlq_retention_ms)},
        ),
    ]


def compare(spec: TopicSpec, partitions: int, config: dict[str, str]) -> tuple[str, ...]:
    """Differences between a wanted topic and what the broker has. Pure."""
    problems = []
    if partitions != spec.partitions:
        problems.append(f"partitions: broker has {partitions}, settings want {spec.partitions}")
    for key, wanted in spec.config.items():
        actual = config.get(key)
        if actual is not None and actual != wanted:
            problems.append(f"{key}: broker has {actual}, settings want {wanted}")
    return tuple(problems)


def apply_topics(
    settings: Settings, specs: list[TopicSpec] | None = None, timeout: float = 15.0
) -> list[TopicReport]:
    """Create missing topics (default: `desired_topics`); report, never alter, ones that differ."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AdminClient,
        ConfigResource,
        NewTopic,
    )

    from adpulse.kafka.client_config import kafka_config

    specs = desired_topics(settings) if specs is None else specs
    bootstrap = settings.kafka_bootstrap
    admin = AdminClient(kafka_config(settings, **_ADMIN))
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise AdpulseError(f"Kafka at {bootstrap} did not answer: {exc}") from None
    reports: list[TopicReport] = []
    missing = [s for s in specs if s.name not in existing]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(s.name, s.partitions, s.replication_factor, config=s.config)
                for s in missing
            ],
            operation_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout)
            except KafkaException as exc:
                raise AdpulseError(f"could not create topic {name}: {exc}") from None
            reports.append(TopicReport(name, "created"))
    for spec in specs:
        if spec.name not in existing:
            continue
        partitions = len(existing[spec.name].partitions)
        config: dict[str, str] = {}
        try:
            resource = ConfigResource(ConfigResource.Type.TOPIC, spec.name)
            described = admin.describe_configs([resource])[resource].result(timeout)
            config = {k: v.value for k, v in described.items() if v.value is not None}
        except KafkaException:
            # Some brokers (tansu) do not describe configs; partitions are still checked.
            config = {}
        problems = compare(spec, partitions, config)
        reports.append(TopicReport(spec.name, "mismatch" if problems else "ok", problems))
    return reports


def delete_topic(settings: Settings, name: str, timeout: float = 15.0) -> None:
    """Delete one topic and wait for the broker to confirm."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    from adpulse.kafka.client_config import kafka_config

    admin = AdminClient(kafka_config(settings, **_ADMIN))
    try:
        admin.delete_topics([name], operation_timeout=timeout)[name].result(timeout)
    except KafkaException as exc:
        raise AdpulseError(f"could not delete topic {name}: {exc}") from None


def unread_partitions(settings: Settings, topic: str, group: str, timeout: float = 10.0) -> int:
    """How many partitions of `topic` hold messages after `group`'s committed offset.

    Compares offsets, never counts: a broker's watermarks need not equal its message count.
    """
    from confluent_kafka import Consumer, TopicPartition

    from adpulse.kafka.client_config import kafka_config

    probe = Consumer(
        kafka_config(settings, **_ADMIN, **{"group.id": group, "enable.auto.commit": False})
    )
    try:
        partitions = probe.list_topics(topic, timeout=timeout).topics[topic].partitions
        committed = probe.committed([TopicPartition(topic, p) for p in partitions], timeout)
        unread = 0
        for tp in committed:
            _low, high = probe.get_watermark_offsets(tp, timeout=timeout)
            if high > max(tp.offset, 0):
                unread += 1
        return unread
    finally:
        probe.close()
