"""The typed stack config (`StackConfig`, `SecretValues`) and the allowed egress and AZ counts."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from adpulse.topology import Topology

EGRESS = ("nat", "endpoints")
# One MSK broker per AZ and stacks/msk.py places exactly three (BROKERS); two AZs would also
# need two brokers and replication factor 2.
AZ_COUNTS = (3,)


@dataclass(frozen=True)
class SecretValues:
    """Overrides from `pulumi config set --secret`, each a secret Output; None (unset) means
    the stack generates the value with pulumi-random (stacks.secret_store)."""

    clickhouse_admin_password: pulumi.Output[str] | None
    clickhouse_ingest_password: pulumi.Output[str] | None
    clickhouse_api_password: pulumi.Output[str] | None
    clickhouse_cluster_secret: pulumi.Output[str] | None
    redis_auth_token: pulumi.Output[str] | None


@dataclass(frozen=True)
class StackConfig:
    """Everything the program reads from config; defaults are the production shape."""

    secrets: SecretValues
    # `adpulse-<stack>`: the prefix of every physical name, so stacks share an account.
    name_prefix: str
    bastion_cidr: str | None
    egress: str  # one of EGRESS
    nat_gateway_per_az: bool
    az_count: int
    flow_log_retention_days: int
    internal_domain: str
    ami_name_filter: str
    ami_owner: str
    clickhouse_instance_type: str
    clickhouse_volume_size_gb: int
    clickhouse_volume_iops: int
    clickhouse_volume_throughput: int
    clickhouse_topology: Topology  # adpulse:clickhouseTopology, SHARDSxREPLICAS
    clickhouse_version: str  # installed from ClickHouse's apt repository, held there
    kafka_instance_type: str
    kafka_version: str
    kafka_volume_size_gb: int
    redis_node_type: str
    redis_engine_version: str
    postgres_instance_class: str
    postgres_engine_version: str
    postgres_multi_az: bool
    postgres_storage_gb: int
    app_instance_type: str
    app_instance_count: int
    certificate_arn: str | None
    api_hostname: str | None
    alarm_email: str | None
    consumer_lag_threshold: int
    deletion_protection: bool
    # Project, Stack and ManagedBy, plus adpulse:tags.
    default_tags: dict[str, str] = field(default_factory=dict)
    redis_snapshot_retention_days: int = 7
    redis_snapshot_window: str = "03:00-04:00"
    backup_retention_days: int = 14
    backup_version_retention_days: int = 7
    freshness_threshold_s: int = 300
