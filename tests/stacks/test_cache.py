"""Redis: two nodes in two AZs, TLS and AUTH, encrypted, reachable only from the app hosts."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from pulumi import Output

from stacks.cache import redis_url
from tests.stacks.conftest import SECRETS, Mocks, of_type, pulumi_test, secret_value


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
