"""The adpulse stack: read config, build the components, export what the services read.

Outputs named like `adpulse.settings.Settings` fields are meant for `ADPULSE_<NAME>` as they
are; the others (hosts, secret ARNs, URLs for people) say where things are.
"""

import pulumi
import pulumi_aws as aws

from stacks.alarms import Alarms, AlarmsArgs
from stacks.app import App, AppArgs
from stacks.backups import Backups, BackupsArgs
from stacks.cache import Cache, CacheArgs
from stacks.clickhouse import (
    ClickHouseArgs,
    ClickHouseCluster,
    settings_topology,
    topology_json,
    topology_toml,
)
from stacks.config import load_stack_config
from stacks.database import Database, DatabaseArgs
from stacks.default_tags import register_default_tags
from stacks.msk import (
    BROKERS,
    SASL_MECHANISM,
    SCRAM_USERNAME,
    SECURITY_PROTOCOL,
    SERVER_PROPERTIES,
    Kafka,
    KafkaArgs,
)
from stacks.network import API_PORT, DASHBOARD_PORT, Network, NetworkArgs
from stacks.secret_store import HostRole, HostRoleArgs, Secrets, SecretsArgs

NAME = "adpulse"

cfg = load_stack_config()
# Before the first resource: every taggable one gets Project, Stack and ManagedBy.
register_default_tags(cfg.default_tags)
values = cfg.secrets
secrets = Secrets(
    NAME,
    SecretsArgs(
        name_prefix=cfg.name_prefix,
        # Unset (None) values are generated with pulumi-random and kept in the state; so are
        # the services' Postgres password and the dashboard's API key (STACK_ONLY_KEYS), which
        # have no override.
        overrides={
            "clickhouse-admin-password": values.clickhouse_admin_password,
            "clickhouse-ingest-password": values.clickhouse_ingest_password,
            "clickhouse-api-password": values.clickhouse_api_password,
            "clickhouse-cluster-secret": values.clickhouse_cluster_secret,
            "redis-auth-token": values.redis_auth_token,
        },
    ),
)
key_arn = secrets.key.arn
network = Network(
    NAME,
    NetworkArgs(
        name_prefix=cfg.name_prefix,
        kms_key_arn=key_arn,
        instance_types=[
            cfg.clickhouse_instance_type,
            cfg.app_instance_type,
            cfg.kafka_instance_type,
        ],
        bastion_cidr=cfg.bastion_cidr,
        egress=cfg.egress,
        nat_gateway_per_az=cfg.nat_gateway_per_az,
        az_count=cfg.az_count,
        flow_log_retention_days=cfg.flow_log_retention_days,
        api_from_alb=cfg.api_hostname is not None,
    ),
)
sg = {key: group.id for key, group in network.security_groups.items()}

clickhouse_role = HostRole(
    f"{NAME}-clickhouse",
    HostRoleArgs(
        secret_arns=[arn for key, arn in secrets.arns.items() if key.startswith("clickhouse-")],
        kms_key_arn=key_arn,
    ),
)
backups = Backups(
    NAME,
    BackupsArgs(
        name_prefix=cfg.name_prefix,
        kms_key_arn=key_arn,
        writer_role_names=[clickhouse_role.role.name],
        retention_days=cfg.backup_retention_days,
        noncurrent_days=cfg.backup_version_retention_days,
        protect=cfg.deletion_protection,
    ),
)
clickhouse = ClickHouseCluster(
    NAME,
    ClickHouseArgs(
        subnet_ids=network.data_subnet_ids,
        availability_zones=network.availability_zones,
        security_group_id=sg["clickhouse"],
        instance_profile=clickhouse_role.profile.name,
        role_name=clickhouse_role.role.name,
        secret_arns=secrets.arns,
        name_prefix=cfg.name_prefix,
        ami_name_filter=cfg.ami_name_filter,
        ami_owner=cfg.ami_owner,
        vpc_id=network.vpc.id,
        internal_domain=cfg.internal_domain,
        kms_key_arn=key_arn,
        topology=cfg.clickhouse_topology,
        clickhouse_version=cfg.clickhouse_version,
        instance_type=cfg.clickhouse_instance_type,
        volume_size_gb=cfg.clickhouse_volume_size_gb,
        volume_iops=cfg.clickhouse_volume_iops,
        volume_throughput=cfg.clickhouse_volume_throughput,
        protect_data=cfg.deletion_protection,
        backup_bucket=backups.bucket_name,
        backup_retention_days=backups.retention_days,
        offline=cfg.egress == "endpoints",
    ),
)
kafka = Kafka(
    NAME,
    KafkaArgs(
        subnet_ids=network.data_subnet_ids,
        security_group_id=sg["kafka"],
        kms_key_arn=key_arn,
        instance_type=cfg.kafka_instance_type,
        kafka_version=cfg.kafka_version,
        volume_size_gb=cfg.kafka_volume_size_gb,
    ),
)
cache = Cache(
    NAME,
    CacheArgs(
        subnet_ids=network.data_subnet_ids,
        security_group_id=sg["redis"],
        auth_token=secrets.values["redis-auth-token"],
        kms_key_arn=key_arn,
        node_type=cfg.redis_node_type,
        engine_version=cfg.redis_engine_version,
        snapshot_retention_days=cfg.redis_snapshot_retention_days,
        snapshot_window=cfg.redis_snapshot_window,
    ),
)
database = Database(
    NAME,
    DatabaseArgs(
        subnet_ids=network.data_subnet_ids,
        security_group_id=sg["postgres"],
        kms_key_arn=key_arn,
        name_prefix=cfg.name_prefix,
        instance_class=cfg.postgres_instance_class,
        engine_version=cfg.postgres_engine_version,
        multi_az=cfg.postgres_multi_az,
        storage_gb=cfg.postgres_storage_gb,
        deletion_protection=cfg.deletion_protection,
    ),
)
app_role = HostRole(
    f"{NAME}-app",
    HostRoleArgs(
        # Everything but the cluster secret, which only the ClickHouse nodes use. The master
        # login is for the migration step run from an app host, which creates adpulse_app.
        secret_arns=[
            *(arn for key, arn in secrets.arns.items() if key != "clickhouse-cluster-secret"),
            database.master_secret_arn,
            kafka.scram_secret_arn,
        ],
        kms_key_arn=key_arn,
    ),
)
app = App(
    NAME,
    AppArgs(
        app_subnet_ids=network.app_subnet_ids,
        public_subnet_ids=network.public_subnet_ids,
        vpc_id=network.vpc.id,
        app_security_group_id=sg["app"],
        alb_security_group_id=sg["alb"],
        instance_profile=app_role.profile.name,
        ami_name_filter=cfg.ami_name_filter,
        ami_owner=cfg.ami_owner,
        kms_key_arn=key_arn,
        instance_type=cfg.app_instance_type,
        instance_count=cfg.app_instance_count,
        certificate_arn=cfg.certificate_arn,
        api_hostname=cfg.api_hostname,
        deletion_protection=cfg.deletion_protection,
    ),
)
alarms = Alarms(
    NAME,
    AlarmsArgs(
        clickhouse_instance_ids=clickhouse.instance_ids,
        msk_cluster_name=kafka.cluster_name,
        msk_broker_count=BROKERS,
        redis_member_ids=cache.member_ids,
        rds_identifier=database.instance.identifier,
        rds_storage_gb=cfg.postgres_storage_gb,
        alb_arn_suffix=app.alb.arn_suffix,
        consumer_lag_threshold=cfg.consumer_lag_threshold,
        stack_name=pulumi.get_stack(),
        kms_key_arn=key_arn,
        freshness_threshold_s=cfg.freshness_threshold_s,
        publisher_role_names=[app_role.role.name],
        email=cfg.alarm_email,
    ),
)

# Settings fields (ADPULSE_<NAME>): no passwords; hosts fetch those by the ARNs below.
# Nodes by FQDN (`ch-1.<adpulse:internalDomain>`), as their certificates name them.
pulumi.export("clickhouse_url", clickhouse.url)
# `cluster` is the settings' name for the default 1 shard x 3 replicas (Keeper on all three);
# another shape names the file to write `clickhouse_topology_toml` to. JSON: `clickhouse_topology`.
pulumi.export("topology", settings_topology(clickhouse.topology))
pulumi.export("kafka_bootstrap", kafka.bootstrap_brokers)
pulumi.export("kafka_security_protocol", SECURITY_PROTOCOL)
pulumi.export("kafka_sasl_mechanism", SASL_MECHANISM)
pulumi.export("kafka_sasl_username", SCRAM_USERNAME)
pulumi.export("topic_replication_factor", int(SERVER_PROPERTIES["default.replication.factor"]))
pulumi.export("redis_url", cache.url)
# The services' own login, adpulse_app (stacks/database.py), never the RDS master user.
pulumi.export("postgres_url", database.url)
# The ALB reaches the services on the hosts' private addresses; the app SG admits only the ALB.
pulumi.export("api_host", "0.0.0.0")  # noqa: S104
pulumi.export("api_port", API_PORT)
pulumi.export("dashboard_port", DASHBOARD_PORT)

# With the nodes' domain: `addresses` (JSON) and `Topology.address` (TOML) give each FQDN.
pulumi.export("clickhouse_topology", topology_json(clickhouse.topology))
pulumi.export("clickhouse_topology_toml", topology_toml(clickhouse.topology))
# Clients verify the nodes' certificates (9440, 8443) against this CA.
pulumi.export("clickhouse_ca_pem", clickhouse.ca_cert_pem)
pulumi.export("clickhouse_hosts", clickhouse.nodes)
pulumi.export("app_hosts", app.hosts)
pulumi.export("dashboard_url", app.dashboard_url)
pulumi.export("dashboard_tls_warning", app.tls_warning)
pulumi.export("alarm_topic_arn", alarms.topic.arn)
pulumi.export("clickhouse_password_secret_arn", secrets.arns["clickhouse-ingest-password"])
pulumi.export("clickhouse_secret_arns", secrets.arns)
pulumi.export("redis_auth_token_secret_arn", secrets.arns["redis-auth-token"])
# JSON {"username", "password"}: the password is ADPULSE_KAFKA_SASL_PASSWORD.
pulumi.export("kafka_scram_secret_arn", kafka.scram_secret_arn)
# The password of postgres_url's user, as a plain string.
pulumi.export("postgres_password_secret_arn", secrets.arns["postgres-app-password"])
# JSON {"username", "password"}, rotated by RDS: for the migration step, which creates the
# adpulse_app role with the password above; no service reads it.
pulumi.export("postgres_master_secret_arn", database.master_secret_arn)
# `adp_...`, a plain string: ADPULSE_DASHBOARD_API_KEY of the API (which registers it) and
# ADPULSE_API_KEY of the dashboard (which sends it).
pulumi.export("dashboard_api_key_secret_arn", secrets.arns["dashboard-api-key"])
pulumi.export("vpc_id", network.vpc.id)
pulumi.export("bucket_name", backups.bucket_name)
# The consumer publishes ConsumerLag and FreshnessSeconds, dimensioned by stack_name, which
# the consumer-lag and consumer-freshness alarms watch.
pulumi.export("cloudwatch_metrics", True)
pulumi.export("stack_name", pulumi.get_stack())
pulumi.export("aws_region", aws.config.region)
