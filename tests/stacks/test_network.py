"""Network policy: nothing but the load balancer faces the internet, and no SSH from it."""

from __future__ import annotations

import ipaddress
from types import ModuleType
from typing import Any

import pulumi
import pytest
from pulumi import Output

from adpulse.clickhouse.config import ConfigOptions
from stacks.network import AZ_COUNT, VPC_CIDR, _nth_az, ingress_policy, subnet_cidrs
from tests.stacks.conftest import Mocks, of_type, pulumi_test

OPEN = {"0.0.0.0/0", "::/0"}


def test_subnets_are_disjoint_20s_inside_the_vpc() -> None:
    tiers = subnet_cidrs(VPC_CIDR)
    nets = [ipaddress.ip_network(c) for block in tiers.values() for c in block]
    assert set(tiers) == {"public", "app", "data"}
    assert all(len(block) == AZ_COUNT for block in tiers.values())
    assert all(n.subnet_of(ipaddress.ip_network(VPC_CIDR)) for n in nets)  # type: ignore[arg-type]
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])


def test_clickhouse_users_admit_the_vpc() -> None:
    """The users template only accepts clients from ConfigOptions.networks."""
    assert VPC_CIDR in ConfigOptions().networks, "change ConfigOptions.networks with VPC_CIDR"


def test_too_few_azs_is_a_clear_error() -> None:
    with pytest.raises(pulumi.RunError, match="2 available AZs; adpulse needs 3"):
        _nth_az(["us-east-1a", "us-east-1b"], 2)


@pulumi_test
def test_only_the_alb_accepts_80_and_443_from_anywhere(program: ModuleType) -> Output[None]:
    network = program.network

    def check(values: list[Any]) -> None:
        alb_id, *rules = values
        for group, port, to_port, cidr, cidr6 in rules:
            if cidr in OPEN or cidr6 in OPEN:
                assert group == alb_id and port == to_port and port in (80, 443), (
                    f"port {port}..{to_port} of {group} is open to the internet"
                )

    return Output.all(
        network.security_groups["alb"].id,
        *(
            Output.all(r.security_group_id, r.from_port, r.to_port, r.cidr_ipv4, r.cidr_ipv6)
            for r in network.ingress_rules
        ),
    ).apply(check)


def test_no_rule_anywhere_opens_ssh_or_more_than_the_alb(mocks: Mocks) -> None:
    """A sweep over every recorded resource, so rules outside the Network component count."""
    rules = of_type(mocks, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    inline = [
        {**rule, "securityGroupId": group.id}
        for group in of_type(mocks, "aws:ec2/securityGroup:SecurityGroup")
        for rule in group.inputs.get("ingress", [])
    ]
    for rule in [r.inputs for r in rules] + inline:
        port = rule.get("fromPort")
        assert port != 22, f"SSH is open on {rule['securityGroupId']} (no bastionCidr is set)"
        sources = {rule.get("cidrIpv4"), rule.get("cidrIpv6"), *rule.get("cidrBlocks", [])}
        if sources & OPEN:
            assert rule["securityGroupId"] == "adpulse-alb-sg-securitygroup-id"
            assert port in (80, 443) and rule.get("toPort") == port


@pulumi_test
def test_each_service_admits_only_its_clients(program: ModuleType) -> Output[None]:
    groups = program.network.security_groups

    def check(values: list[Any]) -> None:
        ids = dict(zip(groups, values[: len(groups)], strict=True))
        name_of = {v: k for k, v in ids.items()}
        admitted: dict[tuple[str, int], set[str]] = {}
        for group, port, source, cidr in values[len(groups) :]:
            admitted.setdefault((name_of[group], port), set()).add(name_of.get(source) or cidr)
        assert admitted[("kafka", 9094)] == {"app"}
        assert admitted[("redis", 6379)] == {"app"}
        assert admitted[("postgres", 5432)] == {"app"}
        assert admitted[("app", 3000)] == admitted[("app", 8000)] == {"alb"}
        assert admitted[("clickhouse", 9363)] == {VPC_CIDR}
        for port in (9009, 9181, 9234, 9000, 8123):
            assert admitted[("clickhouse", port)] == {"clickhouse"}, f"port {port}"
        for port in (9440, 8443):
            assert admitted[("clickhouse", port)] == {"app", "clickhouse"}, f"port {port}"

    return Output.all(
        *(g.id for g in groups.values()),
        *(
            Output.all(
                r.security_group_id, r.from_port, r.referenced_security_group_id, r.cidr_ipv4
            )
            for r in program.network.ingress_rules
        ),
    ).apply(check)


def test_ssh_only_from_the_bastion_cidr_when_one_is_set() -> None:
    ssh = [rule for rule in ingress_policy("203.0.113.7/32") if rule[1] == 22]
    assert {(group, source) for group, _, source, _ in ssh} == {
        ("app", ("bastion", "203.0.113.7/32")),
        ("clickhouse", ("bastion", "203.0.113.7/32")),
    }
    assert not [rule for rule in ingress_policy(None) if rule[1] == 22]


@pulumi_test
def test_tiers_span_three_azs(program: ModuleType) -> Output[None]:
    def check(azs: list[str]) -> None:
        for i in range(0, len(azs), AZ_COUNT):
            assert len(set(azs[i : i + AZ_COUNT])) == AZ_COUNT

    return Output.all(
        *(
            s.availability_zone
            for tier in ("public", "app", "data")
            for s in program.network.subnets[tier]
        )
    ).apply(check)


def test_one_nat_per_az_and_no_public_ips_on_launch(mocks: Mocks) -> None:
    assert len(of_type(mocks, "aws:ec2/natGateway:NatGateway")) == AZ_COUNT
    for subnet in of_type(mocks, "aws:ec2/subnet:Subnet"):
        assert subnet.inputs["mapPublicIpOnLaunch"] is False
