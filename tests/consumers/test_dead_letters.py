"""Every kind of bad message lands in the dead-letter topic with its reason (or is dropped as
a duplicate), and the valid messages behind it are written in the same flush."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from adpulse.clickhouse.client import ClickHouseClient
from adpulse.events import encode
from adpulse.kafka.bad_messages import BAD_KINDS
from adpulse.settings import Settings
from tests.consumers.conftest import Running
from tests.support.events import random_events
from tests.support.kafka import produce, read_topic
from tests.support.oracle import inspect


def test_each_bad_kind_is_dead_lettered_with_reason_and_the_rest_flows(
    schema: ClickHouseClient,
    settings_for: Callable[..., Settings],
    start_consumer: Callable[..., Running],
) -> None:
    assert len(BAD_KINDS) >= 10
    settings = settings_for(topic_partitions=1, batch_interval_s=2.0)
    rng = random.Random(5)
    valid = random_events(3 * len(BAD_KINDS) + 50, int(time.time() * 1000) - 60_000, 60_000)
    messages: list[tuple[bytes | None, bytes]] = []
    expected_dead: dict[int, tuple[str, bytes]] = {}
    for i, kind in enumerate(BAD_KINDS):
        good = valid[i]
        messages.append((good.event_id.encode(), encode(good)))
        payload = kind.make(good, rng)
        if kind.label != "duplicate":
            expected_dead[len(messages)] = (kind.label, payload)
        messages.append((good.event_id.encode(), payload))
    messages.extend((e.event_id.encode(), encode(e)) for e in valid[len(BAD_KINDS) :])
    produce(settings, messages)

    run = start_consumer(settings, schema, stop_after_idle=4)
    run.thread.join(90)
    summary = run.result[0]

    verdict = inspect(schema)
    assert verdict.rows == len(valid)
    assert verdict.ids == {e.event_id for e in valid}
    assert all(verdict.rollups_match.values())
    assert summary.duplicates == 1
    # All valid messages, including those right behind the bad ones, went in the first flush.
    assert summary.batches == 1

    letters = read_topic(settings, settings.dlq_topic, len(expected_dead))
    assert len(letters) == len(expected_dead)
    seen = {}
    for letter in letters:
        headers = dict(letter.headers())
        offset = int(headers["adpulse.source.offset"])
        seen[offset] = (headers["adpulse.reason"].decode(), letter.value() or b"")
        assert headers["adpulse.source.topic"].decode() == settings.events_topic
        assert headers["adpulse.source.partition"] == b"0"
        assert headers["adpulse.detail"]
    assert seen == expected_dead
