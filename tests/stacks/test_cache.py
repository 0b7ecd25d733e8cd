"""Redis: two nodes in two AZs, TLS and AUTH, encrypted, reachable only from the app hosts."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pulumi
import pytest
from pulumi import Output

from stacks.cache import MAINTENANCE_WINDOW, redis_url, window_problem
from stacks.config import StackConfig, StackConfigError, load_stack_config
from stacks.mocks import Mocks
from tests.stacks.conftest import (
    CONFIG,
    SECRETS,
    of_type,
    pulumi_test,
    secret_value,
    set_config,
)


@pulumi_test
def test_multi_az_pair_with_failover_tls_and_encryption(program: ModuleType) -> Output[None]:
    group = program.cache.group

    def check(values: list[Any]) -> None:
        nodes, multi_az, failover, transit, at_rest, key, key_arn, sgs, redis_sg = values
        assert nodes == 2 and multi_az is True and failover is True
        assert transit is True and at_rest is True and key == key_arn
        assert sgs == [redis_sg], "only the redis group, which admits only the app hosts"

    return Output.all(
        group.num_cache_clusters,
        group.multi_az_enabled,
        group.automatic_failover_enabled,
        group.transit_encryption_enabled,
        group.at_rest_encryption_enabled,
        group.kms_key_id,
        program.secrets.key.arn,
        group.security_group_ids,
        program.network.security_groups["redis"].id,
    ).apply(check)


def test_lives_in_the_private_data_subnets_with_the_configured_token(mocks: Mocks) -> None:
    (subnets,) = of_type(mocks, "aws:elasticache/subnetGroup:SubnetGroup")
    assert subnets.inputs["subnetIds"] == [f"adpulse-data-{n}-subnet-id" for n in (1, 2, 3)]
    (group,) = of_type(mocks, "aws:elasticache/replicationGroup:ReplicationGroup")
    assert secret_value(group.inputs["authToken"]) == SECRETS["adpulse:redisAuthToken"]


def test_url_is_tls_without_a_token() -> None:
    assert redis_url("master.example.cache.amazonaws.com") == (
        "rediss://master.example.cache.amazonaws.com:6379"
    )


def load_config(**changes: str) -> StackConfig:
    """The stack config with some adpulse: keys changed; the session's config is restored."""
    try:
        set_config({**CONFIG, **{f"adpulse:{k}": v for k, v in changes.items()}}, list(SECRETS))
        return load_stack_config(pulumi.Config("adpulse"))
    finally:
        set_config(CONFIG, list(SECRETS))


def test_a_week_of_daily_snapshots_clear_of_maintenance(mocks: Mocks) -> None:
    (group,) = of_type(mocks, "aws:elasticache/replicationGroup:ReplicationGroup")
    assert group.inputs["snapshotRetentionLimit"] == 7
    assert group.inputs["snapshotWindow"] == "03:00-04:00"
    assert group.inputs["maintenanceWindow"] == MAINTENANCE_WINDOW == "sun:05:00-sun:06:00"


def test_snapshot_retention_and_window_come_from_config(program: ModuleType) -> None:
    cfg = load_config(redisSnapshotRetentionDays="14", redisSnapshotWindow="22:30-23:45")
    assert (cfg.redis_snapshot_retention_days, cfg.redis_snapshot_window) == (14, "22:30-23:45")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("redisSnapshotRetentionDays", "0", "adpulse:redisSnapshotRetentionDays is 0"),
        ("redisSnapshotRetentionDays", "36", "allowed: 1..35"),
        ("redisSnapshotWindow", "3am", "must be HH:MM-HH:MM in UTC"),
        ("redisSnapshotWindow", "03:00-03:30", "60 minutes or more"),
        ("redisSnapshotWindow", "04:30-05:30", "overlaps the maintenance window"),
    ],
)
def test_bad_snapshot_config_names_the_key(
    program: ModuleType, key: str, value: str, message: str
) -> None:
    with pytest.raises(StackConfigError, match=f"adpulse:{key}") as err:
        load_config(**{key: value})
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("window", "problem"),
    [
        ("03:00-04:00", None),
        ("23:30-00:30", None),  # across midnight
        ("06:00-07:00", None),  # right after maintenance
        ("04:00-05:00", None),  # right before it
        ("04:01-05:01", "overlaps"),
        ("05:59-07:00", "overlaps"),
        ("06:00-05:30", "overlaps"),  # 23.5 hours long
        ("03:00-03:59", "60 minutes"),
        ("24:00-01:00", "HH:MM-HH:MM"),
    ],
)
def test_snapshot_window_rules(window: str, problem: str | None) -> None:
    found = window_problem(window)
    assert (found is None) if problem is None else (found is not None and problem in found)
