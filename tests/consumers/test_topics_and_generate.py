"""Topic management and the traffic generator against the real broker."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from adpulse.errors import AdpulseError
from adpulse.events import Event, Rejection, decode
from adpulse.generate import generate
from adpulse.kafka.topics import apply_topics, compare, desired_topics
from adpulse.settings import Settings, load_settings
from tests.support.kafka import read_topic


def fresh(bootstrap: str, **overrides: Any) -> Settings:
    suffix = uuid.uuid4().hex[:8]
    return load_settings(
        kafka_bootstrap=bootstrap, events_topic=f"t-{suffix}", dlq_topic=f"d-{suffix}", **overrides
    )


def test_apply_creates_then_reports_ok_then_reports_mismatch_without_changing(
    kafka_bootstrap: str,
) -> None:
    settings = fresh(kafka_bootstrap, topic_partitions=4)
    first = apply_topics(settings)
    assert [(r.name, r.action) for r in first] == [
        (settings.events_topic, "created"),
        (settings.dlq_topic, "created"),
    ]
    again = apply_topics(settings)
    assert {r.action for r in again} == {"ok"}

    wider = settings.model_copy(update={"topic_partitions": 8})
    changed = apply_topics(wider)
    assert changed[0].action == "mismatch"
    assert changed[0].problems == ("partitions: broker has 4, settings want 8",)
    # Never altered: the broker still has 4.
    assert apply_topics(settings)[0].action == "ok"


def test_compare_names_each_difference() -> None:
    spec = desired_topics(load_settings(topic_partitions=6, topic_retention_ms=60_000))[0]
    assert compare(spec, 6, {"retention.ms": "60000"}) == ()
    assert compare(spec, 3, {"retention.ms": "1", "cleanup.policy": "compact"}) == (
        "partitions: broker has 3, settings want 6",
        "cleanup.policy: broker has compact, settings want delete",
        "retention.ms: broker has 1, settings want 60000",
    )


def test_generate_produces_contract_events_at_rate_with_bad_share(kafka_bootstrap: str) -> None:
    settings = fresh(kafka_bootstrap, topic_partitions=1)
    apply_topics(settings)
    summary = generate(settings, rate=2_000, duration=2.0, bad_fraction=0.1, seed=3)
    assert 3_000 <= summary.sent <= 4_500
    assert 0.05 * summary.sent <= summary.bad <= 0.15 * summary.sent

    messages = read_topic(settings, settings.events_topic, summary.sent)
    assert len(messages) == summary.sent
    verdicts = [decode(m.value()) for m in messages]
    valid = [v for v in verdicts if isinstance(v, Event)]
    rejected = [v for v in verdicts if isinstance(v, Rejection)]
    repeats = len(valid) - len({v.event_id for v in valid})
    assert len(rejected) + repeats == summary.bad
    assert all(m.key() for m in messages)


def test_generate_refuses_bad_arguments(kafka_bootstrap: str) -> None:
    settings = fresh(kafka_bootstrap)
    with pytest.raises(AdpulseError, match="--bad-fraction"):
        generate(settings, rate=10, duration=1, bad_fraction=2)
    with pytest.raises(AdpulseError, match="--rate"):
        generate(settings, rate=0, duration=1)
