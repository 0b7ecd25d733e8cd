"""Alarms: one per failure that matters, all to the SNS topic, latency judged at P95."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

from pulumi import Output

from stacks.clickhouse import _CW_AGENT, DATA_DIR
from tests.stacks.conftest import CONFIG, Mocks, of_type, pulumi_test

EXPECTED = {
    *(f"ch-{n}-{what}" for n in (1, 2, 3) for what in ("cpu", "status", "disk")),
    *(f"msk-{n}-disk" for n in (1, 2, 3)),
    *(f"redis-{n}-{what}" for n in (1, 2) for what in ("cpu", "evictions")),
    "rds-cpu",
    "rds-storage",
    "alb-elb-5xx",
    "alb-target-5xx",
    "alb-p95-latency",
    "consumer-lag",
}


def test_every_tier_has_its_alarms(program: ModuleType) -> None:
    assert set(program.alarms.alarms) == EXPECTED


@pulumi_test
def test_alb_p95_latency_alarms_above_180_ms(program: ModuleType) -> Output[None]:
    alarm = program.alarms.alarms["alb-p95-latency"]

    def check(values: list[Any]) -> None:
        namespace, metric, stat, threshold, op, dims, suffix, actions, topic = values
        assert (namespace, metric) == ("AWS/ApplicationELB", "TargetResponseTime")
        assert stat == "p95" and threshold == 0.18 and op == "GreaterThanThreshold"
        assert dims == {"LoadBalancer": suffix}
        assert actions == [topic]

    return Output.all(
        alarm.namespace,
        alarm.metric_name,
        alarm.extended_statistic,
        alarm.threshold,
        alarm.comparison_operator,
        alarm.dimensions,
        program.app.alb.arn_suffix,
        alarm.alarm_actions,
        program.alarms.topic.arn,
    ).apply(check)


@pulumi_test
def test_consumer_lag_reads_the_custom_metric(program: ModuleType) -> Output[None]:
    alarm = program.alarms.alarms["consumer-lag"]

    def check(values: list[Any]) -> None:
        namespace, metric, threshold = values
        assert (namespace, metric) == ("adpulse", "consumer_lag")
        assert threshold == 100_000  # the adpulse:consumerLagThreshold default

    return Output.all(alarm.namespace, alarm.metric_name, alarm.threshold).apply(check)


def test_every_alarm_notifies_the_topic_and_the_email_subscribes(mocks: Mocks) -> None:
    (topic,) = of_type(mocks, "aws:sns/topic:Topic")
    topic_arn = f"arn:aws:sns:us-east-1:123456789012:{topic.id}"
    alarms = of_type(mocks, "aws:cloudwatch/metricAlarm:MetricAlarm")
    assert len(alarms) == len(EXPECTED)
    for alarm in alarms:
        assert alarm.inputs["alarmActions"] == [topic_arn], alarm.name
        assert alarm.inputs["okActions"] == [topic_arn], alarm.name
    (sub,) = of_type(mocks, "aws:sns/topicSubscription:TopicSubscription")
    assert sub.inputs["endpoint"] == CONFIG["adpulse:alarmEmail"]


def test_disk_alarms_match_what_the_cloudwatch_agent_reports(mocks: Mocks) -> None:
    """Alarm dimensions must equal the agent's exactly, or the alarm never sees data."""
    agent = _CW_AGENT["metrics"]
    assert json.dumps(agent["append_dimensions"]) == '{"InstanceId": "${aws:InstanceId}"}'
    assert agent["metrics_collected"]["disk"]["drop_device"] is True
    disk = [a for a in of_type(mocks, "aws:cloudwatch/metricAlarm:MetricAlarm") if "disk" in a.name]
    for alarm in disk:
        if alarm.inputs["namespace"] == "CWAgent":
            assert set(alarm.inputs["dimensions"]) == {"InstanceId", "path", "fstype"}
            assert alarm.inputs["dimensions"]["path"] == DATA_DIR


def test_redis_alarms_watch_each_member(mocks: Mocks) -> None:
    members = {
        a.inputs["dimensions"]["CacheClusterId"]
        for a in of_type(mocks, "aws:cloudwatch/metricAlarm:MetricAlarm")
        if a.inputs["namespace"] == "AWS/ElastiCache"
    }
    assert members == {"adpulse-redis-001", "adpulse-redis-002"}
