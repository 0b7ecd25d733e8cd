"""ClickHouse nodes from the topology in config: Graviton hosts spread over the AZs, IMDSv2,
encrypted gp3 data volumes, Debian's own arm64 image, and config errors that name their key."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pulumi
import pytest
from pulumi import Output

from adpulse.clickhouse.url import parse_clickhouse_url
from adpulse.topology import load_topology, single, three_replicas
from stacks.cluster_shape import (
    TOPOLOGY,
    TOPOLOGY_FILE,
    clickhouse_url,
    grid_topology,
    in_domain,
    placement,
    settings_topology,
    topology_json,
    topology_toml,
)
from stacks.config import StackConfig, StackConfigError, load_stack_config
from stacks.inventory import Inventory
from stacks.mocks import Mocks
from stacks.userdata import SETUP
from tests.stacks.conftest import CONFIG, SECRETS, of_type, pulumi_test, set_config
from tests.stacks.test_userdata import clickhouse_user_data, files_of, macros

INSTANCE = "aws:ec2/instance:Instance"


def _node_zones(inventory: Inventory) -> dict[str, tuple[str, str]]:
    """Host -> (instance type, AZ of its subnet)."""
    zone_of = {
        s.id: s.inputs["availabilityZone"] for s in inventory.of_type("aws:ec2/subnet:Subnet")
    }
    return {
        r.inputs["tags"]["Name"]: (r.inputs["instanceType"], zone_of[r.inputs["subnetId"]])
        for r in inventory.of_type(INSTANCE)
        if r.inputs["tags"].get("Role") == "clickhouse"
    }


def test_prod_config_yields_three_r6g_nodes_across_three_azs(prod_inventory: Inventory) -> None:
    nodes = _node_zones(prod_inventory)
    assert sorted(nodes) == ["ch-1", "ch-2", "ch-3"]
    assert {kind for kind, _ in nodes.values()} == {"r6g.2xlarge"}
    assert len({zone for _, zone in nodes.values()}) == 3, nodes


def test_2x2_yields_four_nodes_whose_shard_replicas_never_share_an_az(
    two_by_two_inventory: Inventory,
) -> None:
    nodes = _node_zones(two_by_two_inventory)
    assert sorted(nodes) == ["ch-1", "ch-2", "ch-3", "ch-4"]
    for shard in grid_topology(2, 2).shards:
        zones = [nodes[host][1] for host in shard]
        assert len(set(zones)) == len(zones), f"replicas {shard} share an AZ: {zones}"
    user_data = clickhouse_user_data(two_by_two_inventory.of_type(INSTANCE))
    assert {h: macros(u)["shard"] for h, u in user_data.items()} == {
        "ch-1": "1",
        "ch-2": "1",
        "ch-3": "2",
        "ch-4": "2",
    }


def test_2x2_exports_describe_the_four_nodes(
    two_by_two_inventory: Inventory, tmp_path: Path
) -> None:
    exports = {e.name: e.value for e in two_by_two_inventory.exports}
    expected = grid_topology(2, 2)
    assert json.loads(exports["clickhouse_topology"])["shards"] == [
        ["ch-1", "ch-2"],
        ["ch-3", "ch-4"],
    ]
    # The settings take a TOML path for any shape but `cluster`: the export is that file, in
    # the nodes' domain, so `adpulse config render` from it names nodes as they name each other.
    assert exports["topology"] == TOPOLOGY_FILE
    path = tmp_path / "topology.toml"
    path.write_text(exports["clickhouse_topology_toml"])
    assert load_topology(str(path)) == in_domain(expected, "adpulse.internal")
    target = parse_clickhouse_url(exports["clickhouse_url"])
    fqdns = [f"{h}.adpulse.internal" for h in expected.hosts]
    assert [h for h, _ in target.hosts] == fqdns  # type: ignore[union-attr]


@pulumi_test
def test_three_r6g_nodes_in_three_subnets_and_azs(program: ModuleType) -> Output[None]:
    def check(nodes: list[list[Any]]) -> None:
        assert len(nodes) == 3
        types, subnets, azs, names = zip(*nodes, strict=True)
        assert set(types) == {"r6g.2xlarge"}
        assert len(set(subnets)) == 3, f"nodes share a subnet: {subnets}"
        assert len(set(azs)) == 3, f"nodes share an AZ: {azs}"
        assert [tags["Name"] for tags in names] == ["ch-1", "ch-2", "ch-3"]

    return Output.all(
        *(
            Output.all(i.instance_type, i.subnet_id, i.availability_zone, i.tags)
            for i in program.clickhouse.instances
        )
    ).apply(check)


@pulumi_test
def test_nodes_require_imdsv2_and_encrypt_root_volumes(program: ModuleType) -> Output[None]:
    def check(nodes: list[list[Any]]) -> None:
        for metadata, root, key_arn in nodes:
            # Output.all hands nested blocks over as dicts with snake_case keys.
            assert metadata["http_tokens"] == "required", "IMDSv1 must be off"
            assert root["encrypted"] is True and root["kms_key_id"] == key_arn

    key = program.secrets.key.arn
    return Output.all(
        *(
            Output.all(i.metadata_options, i.root_block_device, key)
            for i in program.clickhouse.instances
        )
    ).apply(check)


def test_nodes_are_ebs_optimized(mocks: Mocks) -> None:
    nodes = [i for i in of_type(mocks, INSTANCE) if i.inputs["tags"].get("Role") == "clickhouse"]
    assert len(nodes) == 3
    assert all(n.inputs.get("ebsOptimized") is True for n in nodes), "CKV_AWS_135"


@pulumi_test
def test_data_volumes_are_encrypted_gp3_sized_from_config(program: ModuleType) -> Output[None]:
    def check(volumes: list[list[Any]]) -> None:
        for kind, size, iops, throughput, encrypted, key, key_arn in volumes:
            # tests/stacks/conftest.py sets 800 GiB, 8000 IOPS, 400 MiB/s.
            assert (kind, size, iops, throughput) == ("gp3", 800, 8000, 400)
            assert encrypted is True and key == key_arn

    key_arn = program.secrets.key.arn
    return Output.all(
        *(
            Output.all(v.type, v.size, v.iops, v.throughput, v.encrypted, v.kms_key_id, key_arn)
            for v in program.clickhouse.volumes
        )
    ).apply(check)


@pulumi_test
def test_each_volume_lives_in_its_nodes_az(program: ModuleType) -> Output[None]:
    def check(rows: list[list[str]]) -> None:
        for volume_az, node_az in rows:
            assert volume_az == node_az, "an EBS volume can only attach within its AZ"

    pairs = zip(program.clickhouse.volumes, program.clickhouse.instances, strict=True)
    return Output.all(
        *(Output.all(v.availability_zone, i.availability_zone) for v, i in pairs)
    ).apply(check)


def test_volumes_attach_to_the_node_of_their_az(mocks: Mocks) -> None:
    attachments = of_type(mocks, "aws:ec2/volumeAttachment:VolumeAttachment")
    assert sorted((a.inputs["volumeId"], a.inputs["instanceId"]) for a in attachments) == [
        (f"adpulse-ch-{n}-data-volume-id", f"adpulse-ch-{n}-instance-id") for n in (1, 2, 3)
    ]


def test_user_data_names_each_nodes_own_volume(mocks: Mocks) -> None:
    """The boot script finds the volume by the serial EC2 gives it: the volume id sans dash."""
    for host, user_data in clickhouse_user_data(of_type(mocks, INSTANCE)).items():
        volume_id = f"adpulse-{host}-data-volume-id"  # the mocks' id for that volume
        setup = files_of(user_data)[SETUP]
        assert f"readonly VOLUME_SERIAL={volume_id.replace('-', '')}\n" in setup


def test_instance_profile_has_ssm_and_cloudwatch_agent(mocks: Mocks) -> None:
    attached = {
        a.inputs["policyArn"].rsplit("/", 1)[-1]
        for a in of_type(mocks, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.name.startswith("adpulse-clickhouse-")
    }
    assert {"AmazonSSMManagedInstanceCore", "CloudWatchAgentServerPolicy"} <= attached


def test_ami_is_debians_own_arm64_image(mocks: Mocks) -> None:
    lookups = [args for token, args in mocks.calls if token == "aws:ec2/getAmi:getAmi"]
    assert lookups, "the program should look the AMI up, not hard-code an id"
    for args in lookups:
        filters = {f["name"]: f["values"] for f in args["filters"]}
        assert args["owners"] == ["136693071363"], "Debian's account, not a lookalike's"
        assert filters["name"] == ["debian-12-arm64-*"]
        assert filters["architecture"] == ["arm64"]
        assert args["mostRecent"] is True


@pulumi_test
def test_nodes_get_private_names_ch_1_to_3(program: ModuleType) -> Output[None]:
    def check(nodes: list[dict[str, str]]) -> None:
        assert [n["name"] for n in nodes] == list(TOPOLOGY.hosts)
        for node in nodes:
            assert node["private_ip"] and node["instance_id"]
            assert node["fqdn"] == f"{node['name']}.adpulse.internal"

    return Output.all(*program.clickhouse.nodes).apply(check)


def test_url_names_the_nodes_by_fqdn_over_tls_without_a_password() -> None:
    target = parse_clickhouse_url(clickhouse_url(in_domain(TOPOLOGY, "db.example.org")))
    assert target.secure and target.password == ""  # type: ignore[union-attr]
    assert target.hosts == tuple(  # type: ignore[union-attr]
        (f"{h}.db.example.org", 9440) for h in TOPOLOGY.hosts
    )


def test_the_topology_exports_carry_the_domain_and_each_address(tmp_path: Path) -> None:
    topology = in_domain(grid_topology(2, 2), "db.example.org")
    parsed = json.loads(topology_json(topology))
    assert parsed["domain"] == "db.example.org"
    assert parsed["addresses"] == {h: f"{h}.db.example.org" for h in topology.hosts}
    path = tmp_path / "t.toml"
    path.write_text(topology_toml(topology))
    assert load_topology(str(path)) == topology


def test_the_default_shape_is_the_settings_cluster() -> None:
    """1 shard x 3 replicas with Keeper on every node: what ADPULSE_TOPOLOGY=cluster means,
    whatever the domain (the services take only the shape from it)."""
    assert load_topology("cluster") == TOPOLOGY == grid_topology(1, 3)
    assert settings_topology(TOPOLOGY) == "cluster"
    assert settings_topology(in_domain(TOPOLOGY, "adpulse.internal")) == "cluster"
    assert settings_topology(grid_topology(2, 2)) == TOPOLOGY_FILE


@pytest.mark.parametrize(
    ("shards", "replicas", "keeper"),
    [
        (1, 1, ()),
        (2, 1, ("ch-1",)),
        (2, 2, ("ch-1", "ch-2", "ch-3")),
        (3, 3, ("ch-1", "ch-2", "ch-3")),
    ],
)
def test_grid_topology_names_hosts_shard_by_shard(
    shards: int, replicas: int, keeper: tuple[str, ...], tmp_path: Path
) -> None:
    topology = grid_topology(shards, replicas)
    assert [len(s) for s in topology.shards] == [replicas] * shards
    assert topology.hosts == tuple(f"ch-{n}" for n in range(1, shards * replicas + 1))
    assert topology.keeper == keeper
    path = tmp_path / "t.toml"
    path.write_text(topology_toml(topology))
    assert load_topology(str(path)) == topology


def test_one_node_is_the_single_shape_without_keeper() -> None:
    assert grid_topology(1, 1).shards == single("ch-1").shards
    assert not grid_topology(1, 1).clustered


def test_two_replicas_cannot_form_a_keeper_quorum() -> None:
    with pytest.raises(ValueError, match="Keeper quorum of 3 nodes"):
        grid_topology(1, 2)


def test_placement_spreads_replicas_and_refuses_two_in_one_az() -> None:
    assert placement(grid_topology(2, 2), 3) == [0, 1, 2, 0]
    assert placement(three_replicas(), 3) == [0, 1, 2]
    with pytest.raises(ValueError, match="3 replicas per shard need 3 AZs, the network has 2"):
        placement(three_replicas(), 2)


Load = Callable[..., StackConfig]


@pytest.fixture
def load(program: ModuleType) -> Iterator[Load]:
    """Load the config with some adpulse keys changed; restore the session's after."""

    def run(**changes: str) -> StackConfig:
        set_config({**CONFIG, **{f"adpulse:{k}": v for k, v in changes.items()}}, list(SECRETS))
        return load_stack_config(pulumi.Config("adpulse"))

    yield run
    set_config(CONFIG, list(SECRETS))


def test_topology_and_version_come_from_config(load: Load) -> None:
    cfg = load(clickhouseTopology="2x2", clickhouseVersion="24.8.14.39")
    assert cfg.clickhouse_topology == grid_topology(2, 2)
    assert cfg.clickhouse_version == "24.8.14.39"
    defaults = load()
    assert (defaults.clickhouse_topology, defaults.clickhouse_version) == (TOPOLOGY, "25.8.8.26")


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"clickhouseTopology": "3"}, "is '3'; allowed: SHARDSxREPLICAS"),
        ({"clickhouseTopology": "0x3"}, "is '0x3'; allowed: SHARDSxREPLICAS with 1..10 shards"),
        ({"clickhouseTopology": "11x1"}, "is '11x1'; allowed"),
        ({"clickhouseTopology": "1x4"}, "1..3 replicas (one per AZ; adpulse:azCount is 3)"),
        ({"clickhouseTopology": "1x2"}, "replicated tables need a Keeper quorum of 3 nodes"),
        ({"clickhouseVersion": "25.8"}, "is '25.8'; allowed: a full release number"),
    ],
)
def test_bad_clickhouse_config_names_the_key_and_the_allowed_values(
    load: Load, changes: dict[str, str], says: str
) -> None:
    key = next(iter(changes))
    with pytest.raises(StackConfigError) as err:
        load(**changes)
    assert f"config adpulse:{key}" in str(err.value)
    assert says in str(err.value)
