"""MSK: three brokers, one per AZ, SASL/SCRAM over TLS only, the stack's key at rest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random
from pulumi import ResourceOptions

BROKERS = 3
# MSK's SASL/SCRAM listener (TLS). With only SCRAM enabled it is the one port clients can use.
SCRAM_PORT = 9096
# What the clients set (the settings fields of the same names; stack outputs too).
SECURITY_PROTOCOL = "SASL_SSL"
SASL_MECHANISM = "SCRAM-SHA-512"  # the only SCRAM mechanism MSK offers
SCRAM_USERNAME = "adpulse"
# MSK associates only secrets whose name starts with this (and that use a customer KMS key).
MSK_SECRET_PREFIX = "AmazonMSK_"  # noqa: S105 (a name prefix, not a secret)

# Topics are created on purpose (`adpulse kafka topics apply`), never by a typo in a producer.
# RF 3 with min.insync 2 lets one broker (one AZ) go down while acks=all writes continue.
SERVER_PROPERTIES = {
    "auto.create.topics.enable": "false",
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "unclean.leader.election.enable": "false",
}


def server_properties(props: dict[str, str] = SERVER_PROPERTIES) -> str:
    """The broker configuration in Kafka's properties format."""
    return "".join(f"{key}={value}\n" for key, value in props.items())


def scram_secret_prefix(name: str, stack: str) -> str:
    """`AmazonMSK_<name>-<stack>-`: MSK's required prefix, and unique per stack."""
    return f"{MSK_SECRET_PREFIX}{name}-{stack}-"


@dataclass
class KafkaArgs:
    subnet_ids: Sequence[pulumi.Input[str]]  # one per AZ
    security_group_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]  # a customer key: MSK refuses SCRAM secrets under aws/...
    instance_type: pulumi.Input[str] = "kafka.m7g.large"
    kafka_version: pulumi.Input[str] = "3.6.0"
    volume_size_gb: pulumi.Input[int] = 500
    log_retention_days: pulumi.Input[int] = 14


class Kafka(pulumi.ComponentResource):
    """The cluster, its configuration and its one SCRAM user.

    Clients dial `bootstrap_brokers` (SASL/SCRAM, 9096) with `SECURITY_PROTOCOL`,
    `SASL_MECHANISM`, `SCRAM_USERNAME` and the `password` of the JSON secret at
    `scram_secret_arn`.
    """

    def __init__(self, name: str, args: KafkaArgs, opts: ResourceOptions | None = None) -> None:
        super().__init__("adpulse:msk:Kafka", name, None, opts)
        child = ResourceOptions(parent=self)
        if len(args.subnet_ids) != BROKERS:
            raise ValueError(f"KafkaArgs: need {BROKERS} subnets, one per broker and AZ")
        configuration = aws.msk.Configuration(
            f"{name}-config",
            kafka_versions=[args.kafka_version],
            server_properties=server_properties(),
            description="adpulse: explicit topics, RF 3, min.insync.replicas 2",
            opts=child,
        )
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-broker-logs",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,  # the key's policy admits CloudWatch Logs
            opts=child,
        )
        self.cluster = aws.msk.Cluster(
            f"{name}-msk",
            kafka_version=args.kafka_version,
            number_of_broker_nodes=BROKERS,
            broker_node_group_info={
                "instance_type": args.instance_type,
                "client_subnets": list(args.subnet_ids),
                "security_groups": [args.security_group_id],
                "storage_info": {"ebs_storage_info": {"volume_size": args.volume_size_gb}},
            },
            configuration_info={
                "arn": configuration.arn,
                "revision": configuration.latest_revision,
            },
            encryption_info={
                "encryption_at_rest_kms_key_arn": args.kms_key_arn,
                "encryption_in_transit": {"client_broker": "TLS", "in_cluster": True},
            },
            # The security group admits only the app hosts, and they must also log in: a
            # compromised neighbour in the VPC cannot read or write events. No plaintext
            # listener and no unauthenticated TLS one.
            client_authentication={"sasl": {"scram": True}, "unauthenticated": False},
            logging_info={
                "broker_logs": {
                    "cloudwatch_logs": {"enabled": True, "log_group": self.log_group.name}
                }
            },
            opts=child,
        )
        self.scram_secret_arn = self._scram_user(name, args)
        self.bootstrap_brokers = self.cluster.bootstrap_brokers_sasl_scram
        self.cluster_name = self.cluster.cluster_name
        self.register_outputs(
            {
                "arn": self.cluster.arn,
                "bootstrap_brokers": self.bootstrap_brokers,
                "scram_secret_arn": self.scram_secret_arn,
            }
        )

    def _scram_user(self, name: str, args: KafkaArgs) -> pulumi.Output[str]:
        """The SCRAM credentials in Secrets Manager, associated with the cluster; its ARN."""
        child = ResourceOptions(parent=self)
        # Letters and digits only: nothing for a shell or a JAAS line to misread; 190 bits.
        password = random.RandomPassword(
            f"{name}-scram-password",
            length=32,
            special=False,
            opts=ResourceOptions(parent=self, additional_secret_outputs=["result"]),
        )
        secret = aws.secretsmanager.Secret(
            f"{name}-scram",
            # A fresh name per creation, so destroy-then-up never meets the deleted secret.
            name_prefix=scram_secret_prefix(name, pulumi.get_stack()),
            kms_key_id=args.kms_key_arn,
            description="adpulse MSK SASL/SCRAM user (username, password)",
            opts=child,
        )
        version = aws.secretsmanager.SecretVersion(
            f"{name}-scram-version",
            secret_id=secret.id,
            # Secret because the password is: Pulumi encrypts it in the state.
            secret_string=pulumi.Output.json_dumps(
                {"username": SCRAM_USERNAME, "password": password.result}
            ),
            opts=ResourceOptions(parent=secret),
        )
        aws.msk.ScramSecretAssociation(
            f"{name}-scram-association",
            cluster_arn=self.cluster.arn,
            secret_arn_lists=[secret.arn],
            # MSK reads the credentials when the secret is associated.
            opts=ResourceOptions(parent=self, depends_on=[version]),
        )
        return secret.arn
