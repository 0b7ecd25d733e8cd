"""CloudWatch alarms for every tier, all notifying one SNS topic."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
from pulumi import ResourceOptions

from adpulse import names
from stacks.clickhouse import DATA_DIR, DISK_FSTYPE

CPU_PERCENT = 80.0
DISK_PERCENT = 80.0
# The dashboard promises sub-200 ms panels; alarm at 180 ms so there is time to act.
P95_LATENCY_S = 0.18
ALB_5XX = 10.0  # per 5 minutes
# Redis evicting keys means the cache is too small for the working set: panels recompute.
REDIS_EVICTIONS = 100.0  # per 5 minutes
FREE_STORAGE_FRACTION = 0.1
# The consumer publishes once a minute or less often (ADPULSE_CLOUDWATCH_INTERVAL_S <= 300):
# two 5-minute periods always hold a datapoint each while it runs, so "missing" means stopped.
CONSUMER_WINDOW = (300, 2, 2)


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: `metric` in `namespace` with `dimensions`, compared with `threshold`."""

    key: str
    namespace: str
    metric: str
    dimensions: Mapping[str, pulumi.Input[str]]
    comparison: str  # ">", ">=" or "<"
    threshold: pulumi.Input[float]
    statistic: str = "Average"  # or Maximum, Minimum, Sum, p95...
    missing_data: str | None = None  # CloudWatch's treat_missing_data, when not the default
    # (period in seconds, periods evaluated, breaching periods needed), when not the default.
    window: tuple[int, int, int] | None = None


_OPERATORS = {
    ">": "GreaterThanThreshold",
    ">=": "GreaterThanOrEqualToThreshold",
    "<": "LessThanThreshold",
}


@dataclass
class AlarmsArgs:
    clickhouse_instance_ids: Sequence[pulumi.Input[str]]
    msk_cluster_name: pulumi.Input[str]
    msk_broker_count: int
    redis_member_ids: Sequence[pulumi.Input[str]]
    rds_identifier: pulumi.Input[str]
    rds_storage_gb: pulumi.Input[int]
    alb_arn_suffix: pulumi.Input[str]
    consumer_lag_threshold: pulumi.Input[int]
    # The consumer's metrics carry these dimensions (consumers/cloudwatch.py).
    stack_name: pulumi.Input[str]
    # The topic's KMS key; its key policy must let cloudwatch.amazonaws.com use it
    # (stacks/secret_store.py), or alarms cannot publish.
    kms_key_arn: pulumi.Input[str]
    freshness_threshold_s: pulumi.Input[int] = 300
    consumer_group: str = names.CONSUMER_GROUP
    # Roles of the hosts that run the consumer: they may put metrics in the adpulse namespace.
    publisher_role_names: Sequence[pulumi.Input[str]] = field(default_factory=list)
    email: str | None = None


def consumer_dimensions(args: AlarmsArgs) -> dict[str, pulumi.Input[str]]:
    """What consumers.cloudwatch.dimensions(settings) gives on the stack's hosts."""
    return {names.STACK_DIMENSION: args.stack_name, names.GROUP_DIMENSION: args.consumer_group}


def put_metrics_policy(namespace: str = names.METRICS_NAMESPACE) -> str:
    """PutMetricData into `namespace` only (the action has no resource ARN to scope by)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "cloudwatch:PutMetricData",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"cloudwatch:namespace": namespace}},
                }
            ],
        }
    )


def alarm_specs(args: AlarmsArgs) -> list[AlarmSpec]:
    """Every alarm of the stack, in one table."""
    specs: list[AlarmSpec] = []
    for i, instance_id in enumerate(args.clickhouse_instance_ids, start=1):
        node = {"InstanceId": instance_id}
        disk = {**node, "path": DATA_DIR, "fstype": DISK_FSTYPE}
        specs += [
            AlarmSpec(f"ch-{i}-cpu", "AWS/EC2", "CPUUtilization", node, ">", CPU_PERCENT),
            AlarmSpec(f"ch-{i}-status", "AWS/EC2", "StatusCheckFailed", node, ">=", 1, "Maximum"),
            # Written by the CloudWatch agent that the node's user data installs.
            AlarmSpec(f"ch-{i}-disk", "CWAgent", "disk_used_percent", disk, ">", DISK_PERCENT),
        ]
    for broker in range(1, args.msk_broker_count + 1):
        dims = {"Cluster Name": args.msk_cluster_name, "Broker ID": str(broker)}
        specs.append(
            AlarmSpec(
                f"msk-{broker}-disk", "AWS/Kafka", "KafkaDataLogsDiskUsed", dims, ">", DISK_PERCENT
            )
        )
    ec = "AWS/ElastiCache"
    for i, member in enumerate(args.redis_member_ids, start=1):
        dims = {"CacheClusterId": member}
        specs += [
            AlarmSpec(f"redis-{i}-cpu", ec, "EngineCPUUtilization", dims, ">", CPU_PERCENT),
            AlarmSpec(f"redis-{i}-evictions", ec, "Evictions", dims, ">", REDIS_EVICTIONS, "Sum"),
        ]
    rds = {"DBInstanceIdentifier": args.rds_identifier}
    free_bytes = pulumi.Output.from_input(args.rds_storage_gb).apply(
        lambda gb: gb * FREE_STORAGE_FRACTION * 1024**3
    )
    alb = {"LoadBalancer": args.alb_arn_suffix}
    elb = "AWS/ApplicationELB"
    lag = args.consumer_lag_threshold
    ns, consumer = names.METRICS_NAMESPACE, consumer_dimensions(args)
    specs += [
        AlarmSpec("rds-cpu", "AWS/RDS", "CPUUtilization", rds, ">", CPU_PERCENT),
        AlarmSpec("rds-storage", "AWS/RDS", "FreeStorageSpace", rds, "<", free_bytes, "Minimum"),
        AlarmSpec("alb-elb-5xx", elb, "HTTPCode_ELB_5XX_Count", alb, ">", ALB_5XX, "Sum"),
        AlarmSpec("alb-target-5xx", elb, "HTTPCode_Target_5XX_Count", alb, ">", ALB_5XX, "Sum"),
        AlarmSpec("alb-p95-latency", elb, "TargetResponseTime", alb, ">", P95_LATENCY_S, "p95"),
        # Published by the consumer (consumers/cloudwatch.py): the largest partition lag, in
        # messages, and the age of the newest event written to ClickHouse.
        AlarmSpec(
            "consumer-lag",
            ns,
            names.CONSUMER_LAG_METRIC,
            consumer,
            ">",
            lag,
            "Maximum",
            window=CONSUMER_WINDOW,
        ),
        AlarmSpec(
            "consumer-freshness",
            ns,
            names.FRESHNESS_METRIC,
            consumer,
            ">",
            args.freshness_threshold_s,
            "Maximum",
            # No datapoints means no consumer is publishing, so none is ingesting: alarm.
            missing_data="breaching",
            window=CONSUMER_WINDOW,
        ),
    ]
    return specs


class Alarms(pulumi.ComponentResource):
    """The SNS topic and one MetricAlarm per spec; `alarms` is keyed by spec key."""

    def __init__(self, name: str, args: AlarmsArgs, opts: ResourceOptions | None = None) -> None:
        super().__init__("adpulse:alarms:Alarms", name, None, opts)
        child = ResourceOptions(parent=self)
        # The stack's key, not the AWS-managed SNS key: CloudWatch cannot publish under that one.
        self.topic = aws.sns.Topic(f"{name}-alarms", kms_master_key_id=args.kms_key_arn, opts=child)
        if args.email:
            aws.sns.TopicSubscription(
                f"{name}-alarms-email",
                topic=self.topic.arn,
                protocol="email",
                endpoint=args.email,
                opts=child,
            )
        self.alarms = {spec.key: self._alarm(name, spec) for spec in alarm_specs(args)}
        # A policy of its own, attached to roles made elsewhere (stacks/secret_store.py).
        self.put_metrics_policy = aws.iam.Policy(
            f"{name}-put-metrics",
            description=f"adpulse: put metrics in the {names.METRICS_NAMESPACE} namespace",
            policy=put_metrics_policy(),
            opts=child,
        )
        for i, role in enumerate(args.publisher_role_names, start=1):
            aws.iam.RolePolicyAttachment(
                f"{name}-put-metrics-{i}",
                role=role,
                policy_arn=self.put_metrics_policy.arn,
                opts=child,
            )
        self.register_outputs({"topic_arn": self.topic.arn})

    def _alarm(self, name: str, spec: AlarmSpec) -> aws.cloudwatch.MetricAlarm:
        percentile = spec.statistic.startswith("p")
        # Counts are judged per 5 minutes; gauges over five 1-minute periods of which three
        # must breach, so a single spike pages nobody.
        summed = spec.statistic == "Sum"
        period, evaluated, breaching = spec.window or ((300, 1, 1) if summed else (60, 5, 3))
        return aws.cloudwatch.MetricAlarm(
            f"{name}-{spec.key}",
            alarm_description=f"adpulse {spec.key}: {spec.metric} {spec.comparison} threshold",
            namespace=spec.namespace,
            metric_name=spec.metric,
            dimensions=dict(spec.dimensions) or None,
            statistic=None if percentile else spec.statistic,
            extended_statistic=spec.statistic if percentile else None,
            comparison_operator=_OPERATORS[spec.comparison],
            threshold=spec.threshold,
            period=period,
            evaluation_periods=evaluated,
            datapoints_to_alarm=breaching,
            treat_missing_data=spec.missing_data or ("notBreaching" if summed else "missing"),
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
            opts=ResourceOptions(parent=self),
        )
