"""Network policy: nothing but the load balancer faces the internet, no SSH from it, one way
out (NAT or endpoints), flow logs, and AZs that can run what the stack puts there."""

from __future__ import annotations

import ipaddress
import json
import re
from types import ModuleType
from typing import Any

import pulumi
import pytest
from pulumi import Output

from adpulse.clickhouse.config import ConfigOptions
from stacks.inventory import Inventory
from stacks.mocks import AZS, ZONE_IDS
from stacks.network import (
    AZ_COUNT,
    ENDPOINTS_WARNING,
    INTERFACE_ENDPOINTS,
    METRICS_PORT,
    VPC_CIDR,
    ingress_policy,
    subnet_cidrs,
)
from stacks.zones import (
    AZ_FILTERS,
    MSK_UNSUPPORTED_ZONE_IDS,
    Zone,
    ec2_type,
    excluded_zone_ids,
    offered_by_zone,
    pick_azs,
)
from tests.stacks.conftest import CONFIG, SECRETS, Mocks, of_type, pulumi_test, run_program

NAT = "aws:ec2/natGateway:NatGateway"
EIP = "aws:ec2/eip:Eip"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"

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


def _zones(*pairs: str) -> list[Zone]:
    """`"us-east-1a=use1-az1"` -> Zone("us-east-1a", "use1-az1")."""
    return [Zone(*pair.split("=")) for pair in pairs]


FOUR = _zones(
    "us-east-1a=use1-az1", "us-east-1b=use1-az2", "us-east-1c=use1-az4", "us-east-1d=use1-az6"
)


def test_too_few_azs_is_a_clear_error() -> None:
    offered = {"use1-az1": {"r6g.large"}, "use1-az2": {"r6g.large"}}
    message = "2 regular AZs offering r6g.large; adpulse needs 3"
    with pytest.raises(pulumi.RunError, match=re.escape(message)):
        pick_azs(FOUR[:2], offered, ["r6g.large"], 3)


def test_a_zone_that_lacks_a_needed_type_is_skipped_and_named() -> None:
    offered = offered_by_zone(
        ["r6g.2xlarge", "m7g.large", "r6g.2xlarge", "r6g.2xlarge", "m7g.large", "m7g.large"],
        ["use1-az1", "use1-az1", "use1-az2", "use1-az4", "use1-az4", "use1-az6"],
    )
    needed = ["m7g.large", "r6g.2xlarge"]
    assert pick_azs(FOUR, offered, needed, 2) == ["us-east-1a", "us-east-1c"]
    with pytest.raises(pulumi.RunError) as err:
        pick_azs(FOUR, offered, needed, 3)
    assert "us-east-1b (use1-az2) lacks m7g.large; us-east-1d (use1-az6) lacks r6g.2xlarge" in str(
        err.value
    )


def test_zones_are_chosen_by_az_id_not_by_the_accounts_names() -> None:
    """Names are shuffled per account; the IDs, and so the choice, are the same everywhere."""
    shuffled = _zones(
        "us-east-1a=use1-az6", "us-east-1b=use1-az10", "us-east-1c=use1-az2", "us-east-1d=use1-az1"
    )
    offered = {z.zone_id: {"m7g.large"} for z in shuffled}
    assert pick_azs(shuffled, offered, ["m7g.large"], 3) == [
        "us-east-1d",
        "us-east-1c",
        "us-east-1a",
    ]


def test_msks_unsupported_az_id_is_skipped_only_when_brokers_go_there() -> None:
    """use1-az3 sorts among the first three; MSK refuses client subnets there."""
    zones = _zones(
        "us-east-1a=use1-az1", "us-east-1f=use1-az3", "us-east-1c=use1-az4", "us-east-1d=use1-az6"
    )
    offered = {z.zone_id: {"m7g.large", "r6g.2xlarge"} for z in zones}
    with_msk = ["r6g.2xlarge", "kafka.m7g.large"]
    excluded = excluded_zone_ids(with_msk)
    assert set(excluded) == {"use1-az3"} == set(MSK_UNSUPPORTED_ZONE_IDS)
    needed = sorted({ec2_type(t) for t in with_msk})
    assert pick_azs(zones, offered, needed, 3, excluded) == [
        "us-east-1a",
        "us-east-1c",
        "us-east-1d",
    ]
    # Without brokers nothing is excluded, and the zone is as good as any other.
    assert excluded_zone_ids(["r6g.2xlarge", "t4g.large"]) == {}
    assert pick_azs(zones, offered, needed, 3) == ["us-east-1a", "us-east-1f", "us-east-1c"]
    with pytest.raises(pulumi.RunError) as err:
        pick_azs(zones, offered, needed, 4, excluded)
    message = str(err.value)
    assert "3 regular AZs offering m7g.large, r6g.2xlarge that MSK accepts" in message
    assert "us-east-1f (use1-az3) is skipped: MSK does not support this AZ ID" in message


def test_only_regular_azs_msk_accepts_are_asked_for_and_used(mocks: Mocks) -> None:
    """The mocks know an opted-in Local Zone that sorts first, and give us-east-1b the AZ ID
    MSK refuses; unfiltered, either would be chosen."""
    asks = [a for t, a in mocks.calls if t.endswith("getAvailabilityZones")]
    assert asks and all(a.get("state") == "available" for a in asks)
    for ask in asks:
        assert {f["name"]: f["values"] for f in ask["filters"]} == AZ_FILTERS
    assert ZONE_IDS["us-east-1b"] in MSK_UNSUPPORTED_ZONE_IDS
    zones = {s.inputs["availabilityZone"] for s in of_type(mocks, "aws:ec2/subnet:Subnet")}
    assert zones == {"us-east-1a", "us-east-1c", "us-east-1d"}
    (msk,) = of_type(mocks, "aws:msk/cluster:Cluster")
    subnets = {s.id: s.inputs["availabilityZone"] for s in of_type(mocks, "aws:ec2/subnet:Subnet")}
    broker_zones = {subnets[i] for i in msk.inputs["brokerNodeGroupInfo"]["clientSubnets"]}
    assert "us-east-1b" not in broker_zones and len(broker_zones) == AZ_COUNT


def test_the_chosen_azs_are_checked_for_the_host_and_broker_types(mocks: Mocks) -> None:
    asks = [a for t, a in mocks.calls if t.endswith("getInstanceTypeOfferings")]
    assert asks
    filters = {f["name"]: f["values"] for f in asks[0]["filters"]}
    # ClickHouse, app hosts, and the EC2 type behind kafka.m7g.large.
    assert {"r6g.2xlarge", "t4g.large", "m7g.large"} <= set(filters["instance-type"])
    # By AZ ID, as the zones are chosen.
    assert filters["location"] == [ZONE_IDS[az] for az in AZS]
    assert asks[0]["locationType"] == "availability-zone-id"


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
        assert admitted[("kafka", 9096)] == {"app"}, "SASL/SCRAM over TLS only"
        assert admitted[("redis", 6379)] == {"app"}
        assert admitted[("postgres", 5432)] == {"app"}
        assert admitted[("app", 3000)] == {"alb"}
        assert admitted[("app", 9108)] == {VPC_CIDR}, "the consumer's health, from the VPC only"
        assert ("app", 8000) not in admitted, "no API through the ALB without apiHostname"
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


def test_the_metrics_port_the_vpc_may_reach_is_the_consumers() -> None:
    from adpulse.settings import Settings

    assert METRICS_PORT == Settings.model_fields["metrics_port"].default
    metrics = [(g, s) for g, p, s, _ in ingress_policy("203.0.113.7/32", True) if p == METRICS_PORT]
    assert metrics == [("app", ("vpc", VPC_CIDR))], "not the ALB, the bastion or the internet"


def test_the_alb_reaches_the_api_port_only_when_the_api_has_a_host_name() -> None:
    api = [(g, p, s) for g, p, s, _ in ingress_policy(None, api_from_alb=True) if p == 8000]
    assert api == [("app", 8000, "alb")]
    assert not [rule for rule in ingress_policy(None) if rule[1] == 8000]


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


def test_nat_egress_one_nat_per_az_and_no_interface_endpoints(mocks: Mocks) -> None:
    nats = {n.id: n for n in of_type(mocks, NAT)}
    assert len(nats) == len(of_type(mocks, EIP)) == AZ_COUNT
    for subnet in of_type(mocks, "aws:ec2/subnet:Subnet"):
        assert subnet.inputs["mapPublicIpOnLaunch"] is False
    private = [t for t in of_type(mocks, ROUTE_TABLE) if "private" in t.name]
    assert sorted(r["natGatewayId"] for t in private for r in t.inputs["routes"]) == sorted(nats)
    endpoints = of_type(mocks, ENDPOINT)
    assert [e.inputs["vpcEndpointType"] for e in endpoints] == ["Gateway"], "S3 only: free"


@pytest.fixture(scope="module")
def endpoints_stack() -> Inventory:
    return run_program({**CONFIG, "adpulse:egress": "endpoints"}, list(SECRETS))


def test_endpoints_egress_has_no_nat_and_no_way_to_the_internet(endpoints_stack: Inventory) -> None:
    assert not endpoints_stack.of_type(NAT) and not endpoints_stack.of_type(EIP)
    tables = {t.name: t.settings for t in endpoints_stack.of_type(ROUTE_TABLE)}
    assert tables.pop("adpulse-public-rt")["routes"][0]["gatewayId"], "the ALB's subnets keep it"
    assert len(tables) == AZ_COUNT and all(not t.get("routes") for t in tables.values())
    app_subnets = sorted(
        s.id for s in endpoints_stack.of_type("aws:ec2/subnet:Subnet") if "-app-" in s.name
    )
    interfaces = {}
    for endpoint in endpoints_stack.of_type(ENDPOINT):
        settings = endpoint.settings
        service = settings["serviceName"].removeprefix("com.amazonaws.us-east-1.")
        if settings["vpcEndpointType"] == "Interface":
            interfaces[service] = settings
            assert settings["privateDnsEnabled"] is True
            assert sorted(settings["subnetIds"]) == app_subnets, "one ENI per AZ"
        else:
            assert service == "s3" and len(settings["routeTableIds"]) == AZ_COUNT
    assert set(interfaces) == set(INTERFACE_ENDPOINTS)
    assert f"program warning: {ENDPOINTS_WARNING}" in endpoints_stack.notes
    assert {"ssm", "ssmmessages", "ec2messages", "secretsmanager"} <= set(interfaces)


def test_flow_logs_record_all_traffic_encrypted_and_kept(mocks: Mocks, program: ModuleType) -> None:
    (flow,) = of_type(mocks, "aws:ec2/flowLog:FlowLog")
    (vpc,) = of_type(mocks, "aws:ec2/vpc:Vpc")
    (key,) = of_type(mocks, "aws:kms/key:Key")
    (group,) = [
        g
        for g in of_type(mocks, "aws:cloudwatch/logGroup:LogGroup")
        if g.id in flow.inputs["logDestination"]
    ]
    assert flow.inputs["vpcId"] == vpc.id and flow.inputs["trafficType"] == "ALL"
    assert flow.inputs["logDestinationType"] == "cloud-watch-logs"
    assert group.inputs["kmsKeyId"] == f"arn:aws:kms:us-east-1:123456789012:{key.id}"
    assert group.inputs["retentionInDays"] == 365
    assert group.inputs["namePrefix"] == "/adpulse-test/vpc-flow-logs-"
    (role,) = [r for r in of_type(mocks, "aws:iam/role:Role") if r.id in flow.inputs["iamRoleArn"]]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    (write,) = [p for p in of_type(mocks, "aws:iam/rolePolicy:RolePolicy") if "flow" in p.name]
    writes = json.loads(write.inputs["policy"])["Statement"][0]
    assert writes["Resource"][0].endswith(group.id) and "logs:PutLogEvents" in writes["Action"]


def test_the_vpcs_default_security_group_admits_nothing(mocks: Mocks) -> None:
    """Adopted with no rules, so anything launched without a group gets no traffic at all."""
    (vpc,) = of_type(mocks, "aws:ec2/vpc:Vpc")
    (default,) = of_type(mocks, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default.inputs["vpcId"] == vpc.id
    assert not default.inputs.get("ingress") and not default.inputs.get("egress")
