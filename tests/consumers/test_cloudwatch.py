"""Lag and freshness reach CloudWatch (moto) with the names and dimensions the alarms watch."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import boto3
import pytest
from botocore.stub import Stubber

from adpulse import names
from adpulse.clickhouse.client import ClickHouseClient
from adpulse.errors import ConfigError
from adpulse.settings import Settings, load_settings
from consumers.cloudwatch import (
    CloudWatchPublisher,
    Observation,
    cloudwatch_publisher,
    metric_data,
)
from tests.consumers.conftest import Running, count_rows, wait_for
from tests.support.events import random_events
from tests.support.kafka import produce_events

REGION = "us-east-1"
NOW = 1_800_000_000.0
DIMS = [{"Name": "ConsumerGroup", "Value": names.CONSUMER_GROUP}, {"Name": "Stack", "Value": "t"}]


def aws_settings(**values: Any) -> Settings:
    return load_settings(
        _env_file=None,
        **{"cloudwatch_metrics": True, "stack_name": "t", "aws_region": REGION, **values},
    )


def stored(client: Any, metric: str, at: float = NOW) -> list[float]:
    """Every value CloudWatch holds for `metric` with our dimensions around `at`."""
    moment = datetime.fromtimestamp(at, UTC)
    answer = client.get_metric_statistics(
        Namespace=names.METRICS_NAMESPACE,
        MetricName=metric,
        Dimensions=DIMS,
        StartTime=moment - timedelta(minutes=5),
        EndTime=moment + timedelta(minutes=5),
        Period=60,
        Statistics=["Maximum", "SampleCount"],
    )
    points = answer["Datapoints"]
    assert all(p["SampleCount"] == 1 for p in points), points
    return [p["Maximum"] for p in points]


def test_metric_data_is_lag_in_messages_and_age_in_seconds() -> None:
    dims = {"Stack": "t", "ConsumerGroup": "g"}
    data = metric_data(Observation(max_lag=42, newest_event_ms=int(NOW * 1000) - 7_500), NOW, dims)
    when = datetime.fromtimestamp(NOW, UTC)
    expected_dims = [{"Name": "ConsumerGroup", "Value": "g"}, {"Name": "Stack", "Value": "t"}]
    assert data == [
        {
            "MetricName": "ConsumerLag",
            "Value": 42.0,
            "Unit": "Count",
            "Dimensions": expected_dims,
            "Timestamp": when,
        },
        {
            "MetricName": "FreshnessSeconds",
            "Value": 7.5,
            "Unit": "Seconds",
            "Dimensions": expected_dims,
            "Timestamp": when,
        },
    ]


def test_unknown_values_are_left_out_and_future_events_are_fresh() -> None:
    assert metric_data(Observation(None, None), NOW, {}) == []
    (only,) = metric_data(Observation(None, int(NOW * 1000) + 2_000), NOW, {})
    assert (only["MetricName"], only["Value"]) == ("FreshnessSeconds", 0.0)


def test_publisher_delivers_both_metrics_to_cloudwatch(cloudwatch: Any) -> None:
    observation = Observation(max_lag=1_234, newest_event_ms=int(NOW * 1000) - 90_000)
    publisher = CloudWatchPublisher(aws_settings(), lambda: observation, clock=lambda: NOW)
    assert publisher.publish_once()

    listed = cloudwatch.list_metrics(Namespace="adpulse")["Metrics"]
    assert sorted((m["MetricName"], _dims(m["Dimensions"])) for m in listed) == [
        ("ConsumerLag", _dims(DIMS)),
        ("FreshnessSeconds", _dims(DIMS)),
    ]
    assert stored(cloudwatch, "ConsumerLag") == [1234.0]
    assert stored(cloudwatch, "FreshnessSeconds") == [90.0]


def test_nothing_is_sent_before_anything_is_known(cloudwatch: Any) -> None:
    publisher = CloudWatchPublisher(aws_settings(), lambda: Observation(None, None))
    assert not publisher.publish_once()
    assert cloudwatch.list_metrics(Namespace="adpulse")["Metrics"] == []


def test_a_refused_send_is_logged_and_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    client = boto3.client(
        "cloudwatch", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y"
    )
    publisher = CloudWatchPublisher(aws_settings(), lambda: Observation(1, None), client=client)
    with Stubber(client) as stub, caplog.at_level(logging.WARNING):
        stub.add_client_error("put_metric_data", "AccessDenied", "not allowed", 403)
        assert not publisher.publish_once()
    assert "PutMetricData failed" in caplog.text and "AccessDenied" in caplog.text
    assert publisher.sent == 0


def test_the_thread_publishes_each_interval_and_survives_a_bad_read(
    cloudwatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    reads = iter([RuntimeError("boom")])

    def observe() -> Observation:
        error = next(reads, None)
        if error is not None:
            raise error
        return Observation(max_lag=5, newest_event_ms=None)

    publisher = CloudWatchPublisher(aws_settings(), observe, interval=0.05).start()
    try:
        wait_for(lambda: publisher.sent >= 2, timeout=10, what="two sends")
    finally:
        publisher.stop()
    assert not publisher._thread.is_alive()
    assert "CloudWatch publishing failed" in caplog.text


def test_off_unless_enabled_and_never_more_than_once_a_minute() -> None:
    assert cloudwatch_publisher(load_settings(_env_file=None), lambda: Observation(1, 1)) is None
    for too_often_or_too_rare in (30, 301):
        with pytest.raises(ConfigError, match="ADPULSE_CLOUDWATCH_INTERVAL_S"):
            aws_settings(cloudwatch_interval_s=too_often_or_too_rare)


def test_freshness_covers_only_the_partitions_still_held() -> None:
    """After a rebalance the new owner reports the moved partitions' freshness; a member left
    with none reports none, rather than an age that grows until the alarm fires."""
    from confluent_kafka import TopicPartition

    from consumers.batch import PartitionBatch
    from consumers.consumer import IngestConsumer, PartitionState

    # Nothing listens on port 9: the clients are built but never used.
    settings = load_settings(_env_file=None, kafka_bootstrap="127.0.0.1:9")
    consumer = IngestConsumer(settings, cast(ClickHouseClient, None), name="t")
    try:
        newest = {}
        for partition, seed in ((0, 1), (1, 2)):
            events = random_events(10, 1_000_000 * (partition + 1), 1_000, seed=seed)
            newest[partition] = max(e.event_time_ms for e in events)
            batch = PartitionBatch(settings.events_topic, partition, 0.0, events=events)
            state = PartitionState(open=PartitionBatch(settings.events_topic, partition, 0.0))
            consumer._partitions[partition] = state
            consumer._written(state, batch)
        assert consumer.observe().newest_event_ms == newest[1]

        consumer._on_revoke(None, [TopicPartition(settings.events_topic, 1)])
        assert consumer.observe().newest_event_ms == newest[0]
        consumer._on_lost(None, [TopicPartition(settings.events_topic, 0)])
        assert consumer.observe().newest_event_ms is None
    finally:
        consumer._consumer.close()


def test_a_real_consumer_reports_its_lag_and_newest_event(
    schema: ClickHouseClient,
    settings_for: Callable[..., Settings],
    start_consumer: Callable[..., Running],
    cloudwatch: Any,
) -> None:
    """Lag grows while ClickHouse refuses writes and drains after; freshness is the newest
    event written. Both arrive in CloudWatch as the consumer observed them."""
    settings = settings_for(
        topic_partitions=2, batch_interval_s=0.5, cloudwatch_metrics=True, aws_region=REGION
    )
    now_ms = int(time.time() * 1000)
    first = random_events(1_000, now_ms - 60_000, 50_000, seed=41)
    run = start_consumer(settings, schema)
    produce_events(settings, first)
    wait_for(lambda: count_rows(schema) == 1_000, what="first events")
    consumer = run.consumer
    newest = max(e.event_time_ms for e in first)
    # The row count is visible a moment before the consumer books the batch as written.
    wait_for(lambda: consumer.observe().newest_event_ms == newest, timeout=10, what="newest")

    schema.command(f"DETACH TABLE {schema.database}.events")
    produce_events(settings, random_events(10, now_ms - 60_000, 50_000, seed=42))
    paused = consumer.metrics.registry
    wait_for(lambda: paused.get_sample_value("adpulse_paused") == 1, timeout=30, what="pause")
    # Paused partitions are not fetched, so librdkafka's own lag stops moving: these arrive
    # unseen, and the lag must still count them. 600 over two partitions puts 300+ on one.
    produce_events(
        settings, random_events(600, now_ms - 60_000, 50_000, seed=43), one_per_batch=True
    )
    wait_for(lambda: (consumer.observe().max_lag or 0) >= 300, timeout=30, what="lag to show")
    behind = consumer.observe()
    publisher = CloudWatchPublisher(settings, consumer.observe, clock=lambda: NOW)
    assert publisher.publish_once()
    schema.command(f"ATTACH TABLE {schema.database}.events")
    wait_for(lambda: consumer.observe().max_lag == 0, timeout=60, what="lag to drain")
    run.stop()

    assert behind.max_lag is not None and 300 <= behind.max_lag <= 610
    dims = [
        {"Name": "ConsumerGroup", "Value": settings.consumer_group},
        {"Name": "Stack", "Value": "local"},
    ]
    moment = datetime.fromtimestamp(NOW, UTC)
    answer = cloudwatch.get_metric_statistics(
        Namespace="adpulse",
        MetricName="ConsumerLag",
        Dimensions=dims,
        StartTime=moment - timedelta(minutes=1),
        EndTime=moment + timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum"],
    )
    assert [p["Maximum"] for p in answer["Datapoints"]] == [float(behind.max_lag)]
    # Nothing new was written during the outage: the age is that of the first batch's newest.
    assert behind.newest_event_ms == newest
    answer = cloudwatch.get_metric_statistics(
        Namespace="adpulse",
        MetricName="FreshnessSeconds",
        Dimensions=dims,
        StartTime=moment - timedelta(minutes=1),
        EndTime=moment + timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum"],
    )
    assert [p["Maximum"] for p in answer["Datapoints"]] == [pytest.approx(NOW - newest / 1000)]


def _dims(dims: list[dict[str, str]]) -> list[tuple[str, str]]:
    return sorted((d["Name"], d["Value"]) for d in dims)
