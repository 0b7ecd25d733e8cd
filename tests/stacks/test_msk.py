"""MSK: three brokers across the data subnets, TLS only, the stack's key at rest."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from pulumi import Output

from stacks.msk import server_properties
from tests.stacks.conftest import Mocks, of_type, pulumi_test


@pulumi_test
def test_three_brokers_tls_in_transit_and_kms_at_rest(program: ModuleType) -> Output[None]:
    cluster = program.kafka.cluster

    def check(values: list[Any]) -> None:
        brokers, nodes, encryption, auth, key_arn, data_subnets = values
        assert brokers == 3
        assert nodes["instance_type"] == "kafka.m7g.large"
        assert nodes["client_subnets"] == data_subnets, "one broker per data subnet (AZ)"
        transit = encryption["encryption_in_transit"]
        assert transit == {"client_broker": "TLS", "in_cluster": True}, "no plaintext listener"
        assert encryption["encryption_at_rest_kms_key_arn"] == key_arn
        assert auth.get("unauthenticated") is True and not auth.get("sasl")

    return Output.all(
        cluster.number_of_broker_nodes,
        cluster.broker_node_group_info,
        cluster.encryption_info,
        cluster.client_authentication,
        program.secrets.key.arn,
        Output.all(*program.network.data_subnet_ids),
    ).apply(check)


def test_broker_configuration_refuses_auto_created_topics(mocks: Mocks) -> None:
    (config,) = of_type(mocks, "aws:msk/configuration:Configuration")
    props = dict(
        line.split("=", 1) for line in config.inputs["serverProperties"].splitlines() if line
    )
    assert props["auto.create.topics.enable"] == "false"
    assert props["default.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    (cluster,) = of_type(mocks, "aws:msk/cluster:Cluster")
    assert cluster.inputs["configurationInfo"]["arn"].endswith("adpulse-config-configuration-id")


def test_server_properties_are_one_per_line() -> None:
    assert server_properties({"a": "1", "b.c": "x"}) == "a=1\nb.c=x\n"
