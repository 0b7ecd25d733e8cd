"""Alarms: one per failure that matters, all to the SNS topic, latency judged at P95."""

from __future__ import annotations

import json
import time
from types import ModuleType
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from pulumi import Output

from adpulse import names
from adpulse.settings import Settings, load_settings
from consumers.cloudwatch import CloudWatchPublisher, Observation
from stacks.clickhouse import _CW_AGENT, DATA_DIR
from stacks.config import StackConfigError, load_stack_config
from stacks.mocks import Mocks
from tests.stacks.conftest import CONFIG, SECRETS, of_type, pulumi_test, set_config

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
    "consumer-freshness",
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
def test_consumer_alarms_watch_exactly_what_the_deployed_consumer_publishes(
    program: ModuleType, outputs: dict[str, Any], cloudwatch: Any
) -> Output[None]:
    """Settings from the stack outputs, a publisher sending to (mocked) CloudWatch, and each
    consumer alarm's namespace, metric and dimensions found among the metrics that arrived."""
    fields = {k: v for k, v in outputs.items() if k in Settings.model_fields}
    lag = program.alarms.alarms["consumer-lag"]
    fresh = program.alarms.alarms["consumer-freshness"]

    def check(values: list[Any]) -> None:
        exported, lag_alarm, fresh_alarm = values
        settings = load_settings(_env_file=None, kafka_sasl_password="unused-here", **exported)
        assert settings.cloudwatch_metrics is True, "the stack turns publishing on"
        newest = int(time.time() * 1000) - 4_000
        publisher = CloudWatchPublisher(settings, lambda: Observation(12, newest))
        assert publisher.publish_once()
        arrived = {
            (m["Namespace"], m["MetricName"], _dims(m["Dimensions"]))
            for m in cloudwatch.list_metrics(Namespace=names.METRICS_NAMESPACE)["Metrics"]
        }
        watched = {(ns, metric, _dims(dims)) for ns, metric, dims in (lag_alarm, fresh_alarm)}
        assert watched == arrived
        assert {metric for _, metric, _ in watched} == {"ConsumerLag", "FreshnessSeconds"}

    def alarm(a: aws.cloudwatch.MetricAlarm) -> Output[list[Any]]:
        return Output.all(a.namespace, a.metric_name, a.dimensions)

    return Output.all(Output.all(**fields), alarm(lag), alarm(fresh)).apply(check)


def test_consumer_dimensions_name_the_stack_and_the_group(mocks: Mocks) -> None:
    alarms = {a.name: a for a in of_type(mocks, "aws:cloudwatch/metricAlarm:MetricAlarm")}
    for key in ("adpulse-consumer-lag", "adpulse-consumer-freshness"):
        assert alarms[key].inputs["namespace"] == "adpulse"
        assert alarms[key].inputs["dimensions"] == {
            "Stack": "test",
            "ConsumerGroup": names.CONSUMER_GROUP,
        }
    assert alarms["adpulse-consumer-lag"].inputs["metricName"] == "ConsumerLag"
    assert alarms["adpulse-consumer-lag"].inputs["threshold"] == 100_000  # the config default


def test_freshness_alarms_after_five_minutes_or_when_nobody_publishes(mocks: Mocks) -> None:
    (alarm,) = [
        a
        for a in of_type(mocks, "aws:cloudwatch/metricAlarm:MetricAlarm")
        if a.name == "adpulse-consumer-freshness"
    ]
    assert alarm.inputs["metricName"] == "FreshnessSeconds"
    assert alarm.inputs["statistic"] == "Maximum"
    assert alarm.inputs["comparisonOperator"] == "GreaterThanThreshold"
    assert alarm.inputs["threshold"] == 300  # adpulse:freshnessThresholdSeconds default
    # A dead consumer publishes nothing: that must page, not sit in INSUFFICIENT_DATA. Two
    # 5-minute periods each hold a datapoint from a live consumer publishing every 60..300 s.
    assert alarm.inputs["treatMissingData"] == "breaching"
    inputs = alarm.inputs
    window = (inputs["period"], inputs["evaluationPeriods"], inputs["datapointsToAlarm"])
    assert window == (300, 2, 2)


def test_only_the_app_hosts_may_put_metrics_and_only_in_our_namespace(mocks: Mocks) -> None:
    (policy,) = [
        p for p in of_type(mocks, "aws:iam/policy:Policy") if p.name == "adpulse-put-metrics"
    ]
    assert json.loads(policy.inputs["policy"])["Statement"] == [
        {
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "adpulse"}},
        }
    ]
    roles = [
        a.inputs["role"]
        for a in of_type(mocks, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["policyArn"].endswith(policy.id)
    ]
    assert roles == ["adpulse-app-role-abc123"]


@pytest.mark.parametrize(("value", "allowed"), [("30", "at least 60"), ("90000", "60..86400")])
def test_bad_freshness_threshold_names_the_key(
    program: ModuleType, value: str, allowed: str
) -> None:
    config = {**CONFIG, "adpulse:freshnessThresholdSeconds": value}
    try:
        set_config(config, list(SECRETS))
        with pytest.raises(StackConfigError, match="adpulse:freshnessThresholdSeconds") as err:
            load_stack_config(pulumi.Config("adpulse"))
    finally:
        set_config(CONFIG, list(SECRETS))
    assert allowed in str(err.value)


def _dims(dims: Any) -> tuple[tuple[str, str], ...]:
    """Dimensions as CloudWatch lists them, or as an alarm holds them, in one comparable form."""
    if isinstance(dims, dict):
        return tuple(sorted(dims.items()))
    return tuple(sorted((d["Name"], d["Value"]) for d in dims))


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


def test_the_topic_is_under_the_stack_key_which_cloudwatch_may_use(mocks: Mocks) -> None:
    """Under a key CloudWatch may not use, every alarm's publish fails and nobody hears."""
    (topic,) = of_type(mocks, "aws:sns/topic:Topic")
    (key,) = of_type(mocks, "aws:kms/key:Key")
    assert topic.inputs["kmsMasterKeyId"] == f"arn:aws:kms:us-east-1:123456789012:{key.id}"
    statements = json.loads(key.inputs["policy"])["Statement"]
    (grant,) = [s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert grant["Effect"] == "Allow"
    assert set(grant["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert grant["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
