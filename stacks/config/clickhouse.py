"""The ClickHouse cluster's shape (`SHARDSxREPLICAS`) and the release every node installs."""

from __future__ import annotations

import re

import pulumi

from adpulse.topology import Topology
from stacks.cluster_shape import DEFAULT_VERSION as CLICKHOUSE_VERSION
from stacks.cluster_shape import grid_topology
from stacks.config.validate import StackConfigError, key

_CLICKHOUSE_SHAPE = re.compile(r"([1-9][0-9]*)x([1-9][0-9]*)")
_CLICKHOUSE_MAX_SHARDS = 10
_CLICKHOUSE_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")


def clickhouse_topology(cfg: pulumi.Config, az_count: int) -> Topology:
    """`SHARDSxREPLICAS`; a shard's replicas sit in different AZs, so at most one per AZ."""
    name = "clickhouseTopology"
    raw = cfg.get(name) or "1x3"
    allowed = (
        f"allowed: SHARDSxREPLICAS with 1..{_CLICKHOUSE_MAX_SHARDS} shards and 1..{az_count} "
        f"replicas (one per AZ; {key('azCount')} is {az_count}), e.g. 1x3 (the default), 2x2 "
        "or 1x1; a replicated shape needs 3 or more nodes for its Keeper quorum"
    )
    match = _CLICKHOUSE_SHAPE.fullmatch(raw.strip().lower())
    if not match:
        raise StackConfigError(f"config {key(name)} is {raw!r}; {allowed}")
    shards, replicas = int(match.group(1)), int(match.group(2))
    if shards > _CLICKHOUSE_MAX_SHARDS or replicas > az_count:
        raise StackConfigError(f"config {key(name)} is {raw!r}; {allowed}")
    try:
        return grid_topology(shards, replicas)
    except ValueError as exc:
        raise StackConfigError(f"config {key(name)}: {exc}; {allowed}") from None


def clickhouse_version(cfg: pulumi.Config) -> str:
    value = cfg.get("clickhouseVersion") or CLICKHOUSE_VERSION
    if not _CLICKHOUSE_VERSION.fullmatch(value):
        raise StackConfigError(
            f"config {key('clickhouseVersion')} is {value!r}; allowed: a full release number "
            f"as ClickHouse's apt repository lists it, all four parts, such as "
            f"{CLICKHOUSE_VERSION} (every node installs exactly this build)"
        )
    return value
