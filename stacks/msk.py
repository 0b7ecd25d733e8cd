"""MSK: three brokers, one per AZ, TLS only, encrypted at rest with the stack's key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from pulumi import ResourceOptions

BROKERS = 3
TLS_PORT = 9094

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


@dataclass
class KafkaArgs:
    subnet_ids: Sequence[pulumi.Input[str]]  # one per AZ
    security_group_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    instance_type: pulumi.Input[str] = "kafka.m7g.large"
    kafka_version: pulumi.Input[str] = "3.6.0"
    volume_size_gb: pulumi.Input[int] = 500


class Kafka(pulumi.ComponentResource):
    """The cluster and its configuration; `bootstrap_brokers_tls` is what clients dial."""

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
            f"{name}-broker-logs", retention_in_days=14, opts=child
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
            # Clients are admitted by security group (only the app hosts) and speak TLS; no
            # plaintext listener exists. IAM/SCRAM auth would need client changes for no gain
            # inside a private VPC.
            client_authentication={"unauthenticated": True},
            logging_info={
                "broker_logs": {
                    "cloudwatch_logs": {"enabled": True, "log_group": self.log_group.name}
                }
            },
            opts=child,
        )
        self.bootstrap_brokers_tls = self.cluster.bootstrap_brokers_tls
        self.cluster_name = self.cluster.cluster_name
        self.register_outputs(
            {"arn": self.cluster.arn, "bootstrap_brokers_tls": self.bootstrap_brokers_tls}
        )
