"""ClickHouse nodes: three Graviton hosts, one per AZ, IMDSv2, encrypted gp3 data volumes."""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

from pulumi import Output

from adpulse.clickhouse.url import parse_clickhouse_url
from adpulse.topology import load_topology
from stacks.clickhouse import TOPOLOGY, clickhouse_url, user_data
from tests.stacks.conftest import Mocks, of_type, pulumi_test


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


def test_instance_profile_has_ssm_and_cloudwatch_agent(mocks: Mocks) -> None:
    attached = {
        a.inputs["policyArn"].rsplit("/", 1)[-1]
        for a in of_type(mocks, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.name.startswith("adpulse-clickhouse-")
    }
    assert attached == {"AmazonSSMManagedInstanceCore", "CloudWatchAgentServerPolicy"}


def test_ami_is_an_arm64_image_found_by_filter(mocks: Mocks) -> None:
    lookups = [args for token, args in mocks.calls if token == "aws:ec2/getAmi:getAmi"]
    assert lookups, "the program should look the AMI up, not hard-code an id"
    for args in lookups:
        filters = {f["name"]: f["values"] for f in args["filters"]}
        assert filters["architecture"] == ["arm64"]
        assert "arm64" in filters["name"][0]
        assert args["mostRecent"] is True


@pulumi_test
def test_nodes_get_private_names_ch_1_to_3(program: ModuleType) -> Output[None]:
    def check(nodes: list[dict[str, str]]) -> None:
        assert [n["name"] for n in nodes] == list(TOPOLOGY.hosts)
        for node in nodes:
            assert node["private_ip"] and node["private_dns"]
            assert node["fqdn"].startswith(f"{node['name']}.")

    return Output.all(*program.clickhouse.nodes).apply(check)


def test_url_names_the_topology_hosts_over_tls_without_a_password() -> None:
    target = parse_clickhouse_url(clickhouse_url(TOPOLOGY))
    assert target.secure and target.password == ""  # type: ignore[union-attr]
    assert target.hosts == tuple((h, 9440) for h in TOPOLOGY.hosts)  # type: ignore[union-attr]


def test_topology_is_the_settings_cluster_shape() -> None:
    """1 shard x 3 replicas with Keeper on every node: what ADPULSE_TOPOLOGY=cluster means."""
    assert load_topology("cluster") == TOPOLOGY
    assert len(TOPOLOGY.shards) == 1 and TOPOLOGY.keeper == TOPOLOGY.hosts


def test_user_data_mounts_the_volume_by_id_and_never_reformats() -> None:
    script = user_data("ch-2", "vol-0abc123")
    assert "hostnamectl set-hostname ch-2" in script
    assert "nvme-Amazon_Elastic_Block_Store_vol0abc123" in script
    assert 'blkid "$dev" || mkfs' in script, "mkfs must only run on a blank volume"
    assert not re.search(r"__[A-Z_]+__", script), "a placeholder was left unfilled"
