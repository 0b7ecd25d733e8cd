"""ElastiCache Redis for the API's response cache: a primary and a replica in two AZs."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from pulumi import ResourceOptions

NODES = 2
PORT = 6379
# Snapshots run daily in the snapshot window (UTC); ElastiCache wants it an hour long at least
# and clear of the weekly maintenance window, which is fixed here so the two cannot meet.
_MAINTENANCE_HOURS = (5, 6)  # Sundays, UTC
MAINTENANCE_WINDOW = "sun:{:02d}:00-sun:{:02d}:00".format(*_MAINTENANCE_HOURS)
SNAPSHOT_RETENTION_DAYS = (1, 35)  # ElastiCache's limits (0 would turn snapshots off)
_WINDOW = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])$")


def window_problem(window: str) -> str | None:
    """Why `window` (`HH:MM-HH:MM`, UTC) cannot be the snapshot window, or None if it can."""
    match = _WINDOW.fullmatch(window)
    if not match:
        return "it must be HH:MM-HH:MM in UTC, e.g. 03:00-04:00"
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    length = (end - start) % (24 * 60)
    if length < 60:
        return "ElastiCache needs a snapshot window of 60 minutes or more"
    first, last = (hour * 60 for hour in _MAINTENANCE_HOURS)
    minutes = {(start + i) % (24 * 60) for i in range(length)}
    if minutes & set(range(first, last)):
        return f"it overlaps the maintenance window {MAINTENANCE_WINDOW} (UTC)"
    return None


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
    snapshot_retention_days: int = 7
    snapshot_window: str = "03:00-04:00"  # UTC


class Cache(pulumi.ComponentResource):
    """A Multi-AZ replication group with automatic failover, TLS and AUTH."""

    def __init__(self, name: str, args: CacheArgs, opts: ResourceOptions | None = None) -> None:
        super().__init__("adpulse:cache:Cache", name, None, opts)
        low, high = SNAPSHOT_RETENTION_DAYS
        if not low <= args.snapshot_retention_days <= high:
            raise ValueError(f"CacheArgs.snapshot_retention_days must be {low}..{high}")
        problem = window_problem(args.snapshot_window)
        if problem:
            raise ValueError(f"CacheArgs.snapshot_window {args.snapshot_window!r}: {problem}")
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
            # Daily snapshots (7 kept by default): a group rebuilt from one starts warm instead
            # of sending every panel to ClickHouse at once.
            snapshot_retention_limit=args.snapshot_retention_days,
            snapshot_window=args.snapshot_window,
            maintenance_window=MAINTENANCE_WINDOW,
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
