"""Instance and node types, engine versions and the Redis snapshot window, checked against the
families and versions AWS offers (stacks.aws_limits)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pulumi

from stacks import aws_limits as limits
from stacks.cache import window_problem
from stacks.config.validate import StackConfigError, key


def host_type(cfg: pulumi.Config, name: str, default: str) -> str:
    """An EC2 type for a host: a Graviton family, since the hosts run Debian 12 arm64."""
    value = cfg.get(name) or default
    family = re.fullmatch(rf"([a-z0-9]+)\.{limits.INSTANCE_SIZE}", value)
    if not family or family.group(1) not in limits.GRAVITON_FAMILIES:
        raise StackConfigError(
            f"config {key(name)} is {value!r}, not a Graviton (arm64) instance type; the hosts "
            f"run Debian 12 arm64. Allowed families: {', '.join(limits.GRAVITON_FAMILIES)} "
            f"(e.g. {default})"
        )
    return value


def service_type(
    cfg: pulumi.Config, name: str, default: str, prefix: str, families: Sequence[str]
) -> str:
    """A managed-service node type such as `cache.t4g.medium` or `db.r6g.large`."""
    value = cfg.get(name) or default
    match = re.fullmatch(rf"{re.escape(prefix)}\.([a-z0-9]+)\.{limits.INSTANCE_SIZE}", value)
    if not match or match.group(1) not in families:
        raise StackConfigError(
            f"config {key(name)} is {value!r}; allowed: {prefix}.<family>.<size> with family "
            f"one of {', '.join(families)} (e.g. {default})"
        )
    return value


def postgres_version(cfg: pulumi.Config) -> str:
    value = cfg.get("postgresEngineVersion") or "16"
    if value.split(".")[0] not in limits.POSTGRES_MAJORS or not re.fullmatch(
        r"[0-9]+(\.[0-9]+)?", value
    ):
        raise StackConfigError(
            f"config {key('postgresEngineVersion')} is {value!r}; allowed: a major version "
            f"({', '.join(limits.POSTGRES_MAJORS)}) or major.minor such as 16.4"
        )
    return value


def snapshot_window(cfg: pulumi.Config) -> str:
    value = cfg.get("redisSnapshotWindow") or "03:00-04:00"
    problem = window_problem(value)
    if problem:
        raise StackConfigError(f"config {key('redisSnapshotWindow')} is {value!r}; {problem}")
    return value
