"""Hand-built inventories and catalogues: every pricing rule is checked against arithmetic done
by hand on these numbers, independent of the bundled catalogue's prices."""

from __future__ import annotations

from typing import Any

import pytest

from cost.catalogue import Catalogue, parse
from cost.usage import Usage
from stacks.inventory import Export, Inventory, Resource

PRICES: dict[str, tuple[float, str]] = {
    "ec2/r6g.2xlarge": (0.4032, "hour"),
    "ec2/r6g.xlarge": (0.2016, "hour"),
    "ec2/t4g.large": (0.0672, "hour"),
    "ebs/gp3/storage": (0.08, "gb-month"),
    "ebs/gp3/iops": (0.005, "iops-month"),
    "ebs/gp3/throughput": (0.04, "mbps-month"),
    "msk/kafka.m7g.large": (0.204, "hour"),
    "msk/storage": (0.10, "gb-month"),
    "elasticache/redis/cache.m6g.large": (0.149, "hour"),
    "elasticache/backup/storage": (0.085, "gb-month"),
    "rds/postgres/db.t4g.medium/multi-az": (0.13, "hour"),
    "rds/gp3/storage/multi-az": (0.23, "gb-month"),
    "elb/alb": (0.0225, "hour"),
    "elb/alb/lcu": (0.008, "lcu-hour"),
    "vpc/nat": (0.045, "hour"),
    "vpc/nat/data": (0.045, "gb"),
    "vpc/endpoint": (0.01, "endpoint-az-hour"),
    "vpc/endpoint/data": (0.01, "gb"),
    "vpc/public-ipv4": (0.005, "hour"),
    "transfer/inter-az": (0.01, "gb"),
    "transfer/internet-out": (0.09, "gb"),
    "s3/standard/storage": (0.023, "gb-month"),
    "s3/put": (0.005, "1k-requests"),
    "cloudwatch/alarm": (0.10, "alarm-month"),
    "cloudwatch/metric": (0.30, "metric-month"),
    "cloudwatch/logs/ingest": (0.50, "gb"),
    "cloudwatch/logs/storage": (0.03, "gb-month"),
    "secretsmanager/secret": (0.40, "secret-month"),
    "kms/key": (1.0, "key-month"),
    "route53/zone": (0.50, "zone-month"),
    "kinesis/shard": (0.015, "hour"),
    "kinesis/put-units": (0.014, "1m-units"),
    "kinesis/on-demand/stream": (0.04, "hour"),
    "kinesis/on-demand/ingest": (0.08, "gb"),
    "kinesis/on-demand/retrieve": (0.04, "gb"),
    "clickhouse-cloud/scale/compute": (0.2985, "unit-hour"),
    "clickhouse-cloud/enterprise/compute": (0.3903, "unit-hour"),
    "clickhouse-cloud/storage": (25.30, "tb-month"),
}


@pytest.fixture
def catalogue() -> Catalogue:
    return parse(
        {
            "as_of": "2026-12-06",
            "sources": {
                "hand": {
                    "title": "test prices",
                    "url": "https://example.test",
                    "date": "2026-12-06",
                }
            },
            "prices": [
                {"key": k, "region": "us-east-1", "usd": usd, "unit": unit, "source": "hand"}
                for k, (usd, unit) in PRICES.items()
            ],
        },
        "test",
    )


USAGE = Usage(
    events_per_day=200e6,
    kafka_bytes_per_event=300,
    clickhouse_bytes_per_event=40,
    rollup_bytes_per_event=2,
)


@pytest.fixture
def usage() -> Usage:
    return USAGE


def res(typ: str, name: str, **inputs: Any) -> Resource:
    short = typ.rsplit(":", 1)[-1].lower()
    return Resource(typ, name, f"{name}-{short}-id", inputs)


def seed_shape(volume_gb: float = 500) -> Inventory:
    """The seed's shape by hand: 3 ClickHouse nodes (1 shard x 3), MSK x3, Redis x2, RDS, ALB."""
    resources: list[Resource] = []
    for i in (1, 2, 3):
        node = res(
            "aws:ec2/instance:Instance",
            f"ch-{i}",
            instanceType="r6g.2xlarge",
            tags={"Role": "clickhouse"},
            rootBlockDevice={"volumeType": "gp3", "volumeSize": 30},
        )
        vol = res(
            "aws:ebs/volume:Volume",
            f"ch-{i}-data",
            type="gp3",
            size=volume_gb,
            iops=6000,
            throughput=250,
        )
        resources += [
            node,
            vol,
            res(
                "aws:ec2/volumeAttachment:VolumeAttachment",
                f"ch-{i}-att",
                volumeId=vol.id,
                instanceId=node.id,
            ),
        ]
    resources += [
        res(
            "aws:msk/cluster:Cluster",
            "msk",
            numberOfBrokerNodes=3,
            brokerNodeGroupInfo={
                "instanceType": "kafka.m7g.large",
                "storageInfo": {"ebsStorageInfo": {"volumeSize": 500}},
            },
        ),
        res(
            "aws:elasticache/replicationGroup:ReplicationGroup",
            "redis",
            nodeType="cache.m6g.large",
            numCacheClusters=2,
            snapshotRetentionLimit=7,
        ),
        res(
            "aws:rds/instance:Instance",
            "pg",
            instanceClass="db.t4g.medium",
            multiAz=True,
            allocatedStorage=50,
        ),
        res("aws:lb/loadBalancer:LoadBalancer", "alb", internal=False, subnets=["a", "b", "c"]),
        res("aws:s3/bucket:Bucket", "backups"),
    ]
    topology = '{"shards": [["ch-1", "ch-2", "ch-3"]]}'
    return Inventory(
        "seed",
        tuple(resources),
        (
            Export("clickhouse_topology", topology, False),
            Export("topic_replication_factor", 3, False),
        ),
        {"aws:region": "us-east-1"},
    )
