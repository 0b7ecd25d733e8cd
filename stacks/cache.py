"""ElastiCache Redis for the API's response cache: a primary and a replica in two AZs."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from pulumi import ResourceOptions

NODES = 2
PORT = 6379


def redis_url(host: str, port: int = PORT) -> str:
    """`rediss://host:6379`: TLS, and no token in the URL (it lives in Secrets Manager)."""
    return f"rediss://{host}:{port}"


def _nth_member(ids: Sequence[str], index: int) -> str:
    return sorted(ids)[index]


@dataclass
class CacheArgs:
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    auth_token: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    node_type: pulumi.Input[str] = "cache.t4g.medium"
    engine_version: pulumi.Input[str] = "7.1"


class Cache(pulumi.ComponentResource):
    """A Multi-AZ replication group with automatic failover, TLS and AUTH."""

    def __init__(self, name: str, args: CacheArgs, opts: ResourceOptions | None = None) -> None:
        super().__init__("adpulse:cache:Cache", name, None, opts)
        child = ResourceOptions(parent=self)
        subnets = aws.elasticache.SubnetGroup(
            f"{name}-redis-subnets",
            subnet_ids=list(args.subnet_ids),
            description="adpulse Redis: data subnets",
            opts=child,
        )
        # The cache only saves recomputation, so two nodes (not a cluster) are enough; the
        # replica in a second AZ turns a primary failure into a ~30 s failover, not a cold cache.
        self.group = aws.elasticache.ReplicationGroup(
            f"{name}-redis",
            description="adpulse API response cache",
            engine="redis",
            engine_version=args.engine_version,
            node_type=args.node_type,
            num_cache_clusters=NODES,
            automatic_failover_enabled=True,
            multi_az_enabled=True,
            port=PORT,
            subnet_group_name=subnets.name,
            security_group_ids=[args.security_group_id],
            at_rest_encryption_enabled=True,
            kms_key_id=args.kms_key_arn,
            transit_encryption_enabled=True,
            auth_token=args.auth_token,
            snapshot_retention_limit=1,
            apply_immediately=False,
            opts=child,
        )
        self.primary_endpoint = self.group.primary_endpoint_address
        self.url = self.primary_endpoint.apply(redis_url)
        # AWS names the members <group>-001, -002...; alarms watch each node.
        self.member_ids = [
            self.group.member_clusters.apply(functools.partial(_nth_member, index=i))
            for i in range(NODES)
        ]
        self.register_outputs({"url": self.url})
