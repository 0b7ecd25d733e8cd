"""Lines derived from usage: transfer, LCUs, NAT or endpoint GB, S3 backups, logs, metrics.

Pure arithmetic over the inventory (what exists: NATs, endpoints, replicas, log groups) and the
usage assumptions (how much flows). Steady state: storage is what the retentions hold once full.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from cost.lines import Line
from cost.resources import Pricing, role_of

# AWS's billing GB is 2^30 bytes, a GiB: S3's FAQ turns byte-hours into GB-months at
# 1,073,741,824 bytes per GB and its S3 Express example bills uploads at 1,048,576 KB per GB;
# EBS, MSK and RDS volumes are sized in GiB. Every byte count becomes billed GB through this
# one constant: S3 storage, inter-AZ and internet transfer, ALB bytes, the capacity check.
GIB = 2**30
# The node's backup timer keeps this many daily full BACKUPs unless the stack sets
# adpulse:backupRetentionDays (stacks.config's default; a test holds the two equal).
DEFAULT_BACKUP_RETENTION_DAYS = 14
# One ALB LCU buys, per hour, the largest of: 25 new connections/s, 1 GB processed (EC2
# targets), 1,000 rule evaluations/s, 3,000 active connections/min. The first two bind here.
LCU_NEW_CONNECTIONS_PER_S = 25.0
LCU_GB_PER_HOUR = 1.0

AGENT_NAMESPACE = "CWAgent"  # counted per node by usage.agent_metrics_per_node

# Transfers AWS does not bill, printed so nobody adds them by hand.
NOT_BILLED = (
    "MSK broker-to-broker replication across AZs (free in MSK)",
    "ClickHouse backups to S3 through the gateway endpoint (no NAT, no transfer charge)",
    "traffic inside one AZ over private IPs",
)


def days(p: Pricing) -> float:
    return p.hours / 24


def replicas_per_shard(p: Pricing) -> tuple[int, int]:
    """(shards, replicas per shard) of the ClickHouse topology the stack exports."""
    import json

    for export in p.inventory.exports:
        if export.name == "clickhouse_topology":
            shards = json.loads(export.value)["shards"]
            return len(shards), max(len(s) for s in shards)
    nodes = sum(
        1 for i in p.inventory.of_type("aws:ec2/instance:Instance") if role_of(i) == "clickhouse"
    )
    return 1, max(nodes, 1)


def stored_bytes(p: Pricing) -> float:
    """Bytes ClickHouse holds across all shards, one replica each, once the retentions are full."""
    u = p.usage
    return u.events_per_day * (
        u.clickhouse_bytes_per_event * u.raw_retention_days
        + u.rollup_bytes_per_event * u.rollup_retention_days
    )


def transfer(p: Pricing) -> Iterator[Line]:
    """Inter-AZ GB, billed once leaving and once arriving (2 x the GB at the per-GB price)."""
    u = p.usage
    month_events = u.events_per_day * days(p)
    share = u.cross_az_share
    if p.inventory.of_type("aws:msk/cluster:Cluster"):
        kafka_gb = month_events * u.kafka_bytes_per_event / GIB
        yield p.line(
            "network",
            "usage",
            f"inter-AZ: producers to MSK ({share:.0%} of {kafka_gb:,.0f} GB, both directions)",
            "transfer/inter-az",
            2 * kafka_gb * share,
            "usage",
            "inter-az/producers->msk",
        )
        yield p.line(
            "network",
            "usage",
            f"inter-AZ: MSK to the consumer ({share:.0%}, both directions)",
            "transfer/inter-az",
            2 * kafka_gb * share,
            "usage",
            "inter-az/msk->consumer",
        )
    insert = u.insert_bytes_per_event or u.kafka_bytes_per_event
    insert_gb = month_events * insert / GIB
    yield p.line(
        "network",
        "usage",
        f"inter-AZ: consumer inserts into ClickHouse ({share:.0%}, both directions)",
        "transfer/inter-az",
        2 * insert_gb * share,
        "usage",
        "inter-az/consumer->clickhouse",
    )
    _, replicas = replicas_per_shard(p)
    if replicas > 1:
        part_gb = month_events * (u.clickhouse_bytes_per_event + u.rollup_bytes_per_event) / GIB
        yield p.line(
            "network",
            "usage",
            f"inter-AZ: ClickHouse replica fetches ({replicas - 1} "
            f"x {part_gb:,.0f} GB of parts, both directions)",
            "transfer/inter-az",
            2 * part_gb * (replicas - 1),
            "usage",
            "inter-az/clickhouse-replica->replica",
        )


def edge(p: Pricing) -> Iterator[Line]:
    u = p.usage
    if not p.inventory.of_type("aws:lb/loadBalancer:LoadBalancer"):
        return
    gb_per_hour = u.api_requests_per_second * u.api_response_bytes * 3600 / GIB
    lcu = max(
        gb_per_hour / LCU_GB_PER_HOUR,
        u.api_requests_per_second * u.alb_new_connections_share / LCU_NEW_CONNECTIONS_PER_S,
    )
    yield p.line(
        "edge",
        "usage",
        f"ALB LCUs ({lcu:.3f} LCU at {u.api_requests_per_second:g} req/s)",
        "elb/alb/lcu",
        lcu * p.hours,
        "usage",
        "alb/lcu",
    )
    yield p.line(
        "edge",
        "usage",
        "internet egress: API answers to browsers",
        "transfer/internet-out",
        gb_per_hour * p.hours,
        "usage",
        "internet-out/api",
    )


def egress(p: Pricing) -> Iterator[Line]:
    u = p.usage
    if p.inventory.of_type("aws:ec2/natGateway:NatGateway"):
        yield p.line(
            "network",
            "usage",
            "NAT data processed",
            "vpc/nat/data",
            u.nat_gb_per_month,
            "usage",
            "nat/data",
        )
    interface = [
        e
        for e in p.inventory.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
        if e.settings.get("vpcEndpointType") == "Interface"
    ]
    if interface:
        yield p.line(
            "network",
            "usage",
            "interface endpoint data processed",
            "vpc/endpoint/data",
            u.endpoint_gb_per_month,
            "usage",
            "endpoint/data",
        )


def backup_copies(p: Pricing) -> float:
    """Daily full backups kept: the stack's adpulse:backupRetentionDays."""
    return float(
        p.inventory.config.get("adpulse:backupRetentionDays", DEFAULT_BACKUP_RETENTION_DAYS)
    )


def backups(p: Pricing) -> Iterator[Line]:
    u = p.usage
    if not p.inventory.of_type("aws:s3/bucket:Bucket"):
        return
    gb = stored_bytes(p) / GIB
    copies = backup_copies(p)
    yield p.line(
        "backups",
        "usage",
        f"S3: {copies:g} daily full backups x {gb:,.0f} GB",
        "s3/standard/storage",
        copies * gb,
        "usage",
        "s3/backups",
    )
    yield p.line(
        "backups",
        "usage",
        "S3 PUTs of the daily backup",
        "s3/put",
        u.backup_put_requests_per_day * days(p) / 1000,
        "usage",
        "s3/backup-puts",
    )


def observability(p: Pricing) -> Iterator[Line]:
    u = p.usage
    for group in p.inventory.of_type("aws:cloudwatch/logGroup:LogGroup"):
        name = group.name
        gb = u.flow_log_gb_per_month if "flow" in name else u.broker_log_gb_per_month
        keep = float(group.settings.get("retentionInDays") or 3653)
        yield p.line(
            "observability",
            group,
            f"log ingestion ({gb:g} GB a month)",
            "cloudwatch/logs/ingest",
            gb,
            "usage",
        )
        yield p.line(
            "observability",
            group,
            f"log storage ({keep:g} days kept)",
            "cloudwatch/logs/storage",
            gb * min(keep / days(p), 120),
            "usage",
        )
    custom = {
        (
            a.settings.get("namespace"),
            a.settings.get("metricName"),
            tuple(sorted((a.settings.get("dimensions") or {}).items())),
        )
        for a in p.inventory.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if not str(a.settings.get("namespace", "AWS/")).startswith(("AWS/", AGENT_NAMESPACE))
    }
    nodes = sum(
        1 for i in p.inventory.of_type("aws:ec2/instance:Instance") if role_of(i) == "clickhouse"
    )
    count = len(custom) + math.ceil(u.agent_metrics_per_node * nodes)
    if count:
        yield p.line(
            "observability",
            "usage",
            f"custom metrics: {len(custom)} from the consumer, "
            f"{count - len(custom)} from the CloudWatch agent",
            "cloudwatch/metric",
            count,
            "usage",
            "cloudwatch/custom-metrics",
        )


def usage_lines(p: Pricing) -> list[Line]:
    return [*transfer(p), *edge(p), *egress(p), *backups(p), *observability(p)]
