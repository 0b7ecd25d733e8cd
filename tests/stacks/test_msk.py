"""MSK: three brokers across the data subnets, SASL/SCRAM over TLS only, the stack's key at rest,
broker logs in CloudWatch, and outputs that configure the Kafka clients as they are."""

from __future__ import annotations

import json
import re
from types import ModuleType
from typing import Any

from pulumi import Output

from adpulse.kafka.client_config import kafka_config
from adpulse.settings import Settings, load_settings
from stacks.mocks import Mocks
from stacks.msk import SCRAM_PORT, server_properties
from tests.stacks.conftest import of_type, pulumi_test, secret_value


@pulumi_test
def test_three_brokers_scram_over_tls_and_kms_at_rest(program: ModuleType) -> Output[None]:
    cluster = program.kafka.cluster

    def check(values: list[Any]) -> None:
        brokers, nodes, encryption, auth, key_arn, data_subnets = values
        assert brokers == 3
        assert nodes["instance_type"] == "kafka.m7g.large"
        assert nodes["client_subnets"] == data_subnets, "one broker per data subnet (AZ)"
        transit = encryption["encryption_in_transit"]
        assert transit == {"client_broker": "TLS", "in_cluster": True}, "no plaintext listener"
        assert encryption["encryption_at_rest_kms_key_arn"] == key_arn
        # Only SCRAM: no unauthenticated clients, and no TLS or IAM listener besides.
        assert auth == {"sasl": {"scram": True}, "unauthenticated": False}

    return Output.all(
        cluster.number_of_broker_nodes,
        cluster.broker_node_group_info,
        cluster.encryption_info,
        cluster.client_authentication,
        program.secrets.key.arn,
        Output.all(*program.network.data_subnet_ids),
    ).apply(check)


def test_broker_logs_go_to_the_stacks_log_group(mocks: Mocks) -> None:
    (cluster,) = of_type(mocks, "aws:msk/cluster:Cluster")
    logs = cluster.inputs["loggingInfo"]["brokerLogs"]["cloudwatchLogs"]
    groups = {g.name: g for g in of_type(mocks, "aws:cloudwatch/logGroup:LogGroup")}
    assert logs == {"enabled": True, "logGroup": "adpulse-broker-logs-abc123"}
    assert groups["adpulse-broker-logs"].inputs["retentionInDays"] == 14


def test_the_scram_secret_is_msk_named_under_the_customer_key(mocks: Mocks) -> None:
    (key,) = of_type(mocks, "aws:kms/key:Key")
    key_arn = f"arn:aws:kms:us-east-1:123456789012:{key.id}"
    (secret,) = [
        s for s in of_type(mocks, "aws:secretsmanager/secret:Secret") if s.name == "adpulse-scram"
    ]
    # MSK associates only AmazonMSK_* secrets under a customer managed key; the stack in the
    # name keeps two stacks apart, and the generated suffix lets destroy-then-up reuse the prefix.
    assert secret.inputs["namePrefix"] == "AmazonMSK_adpulse-test-"
    assert "name" not in secret.inputs
    assert secret.inputs["kmsKeyId"] == key_arn

    (version,) = [
        v
        for v in of_type(mocks, "aws:secretsmanager/secretVersion:SecretVersion")
        if v.name == "adpulse-scram-version"
    ]
    assert version.inputs["secretId"] == secret.id
    credentials = json.loads(secret_value(version.inputs["secretString"]))
    assert credentials["username"] == "adpulse"
    assert re.fullmatch(r"[A-Za-z0-9]{32}", credentials["password"])
    (generated,) = [
        r
        for r in of_type(mocks, "random:index/randomPassword:RandomPassword")
        if r.name == "adpulse-scram-password"
    ]
    assert generated.inputs["length"] == 32 and generated.inputs["special"] is False

    (association,) = of_type(mocks, "aws:msk/scramSecretAssociation:ScramSecretAssociation")
    (cluster,) = of_type(mocks, "aws:msk/cluster:Cluster")
    assert association.inputs["clusterArn"].endswith(cluster.id)
    assert association.inputs["secretArnLists"] == [
        f"arn:aws:secretsmanager:us-east-1:123456789012:{secret.id}"
    ]


def test_the_app_hosts_may_read_the_scram_secret_and_no_other_host_may(mocks: Mocks) -> None:
    (secret,) = [
        s for s in of_type(mocks, "aws:secretsmanager/secret:Secret") if s.name == "adpulse-scram"
    ]
    arn = f"arn:aws:secretsmanager:us-east-1:123456789012:{secret.id}"
    readers = {
        p.name
        for p in of_type(mocks, "aws:iam/rolePolicy:RolePolicy")
        if arn in json.dumps(p.inputs["policy"])
    }
    assert readers == {"adpulse-app-secrets"}


@pulumi_test
def test_outputs_configure_the_kafka_clients_for_scram(
    program: ModuleType, outputs: dict[str, Any]
) -> Output[None]:
    """`ADPULSE_<NAME>=<output>` plus the secret's password gives a client config for MSK."""
    kafka_keys = [
        name for name in outputs if name.startswith("kafka_") and name in Settings.model_fields
    ]
    assert set(kafka_keys) == {
        "kafka_bootstrap",
        "kafka_security_protocol",
        "kafka_sasl_mechanism",
        "kafka_sasl_username",
    }
    assert "kafka_scram_secret_arn" in outputs

    def check(values: list[Any]) -> None:
        fields, scram_brokers, secret_arn, exported_arn = values
        assert fields["kafka_bootstrap"] == scram_brokers
        assert exported_arn == secret_arn
        settings = load_settings(_env_file=None, kafka_sasl_password="pw-from-the-secret", **fields)
        config = kafka_config(settings)
        assert config["security.protocol"] == "SASL_SSL"
        assert config["sasl.mechanism"] == "SCRAM-SHA-512"
        assert config["sasl.username"] == "adpulse"
        brokers = config["bootstrap.servers"].split(",")
        assert len(brokers) == 3 and all(b.endswith(f":{SCRAM_PORT}") for b in brokers)

    return Output.all(
        Output.all(**{k: outputs[k] for k in kafka_keys}),
        program.kafka.cluster.bootstrap_brokers_sasl_scram,
        program.kafka.scram_secret_arn,
        outputs["kafka_scram_secret_arn"],
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
