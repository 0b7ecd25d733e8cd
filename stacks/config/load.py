"""`load_stack_config`: read every key once, check it, and build the `StackConfig`."""

from __future__ import annotations

import pulumi

from stacks import aws_limits as limits
from stacks.cache import SNAPSHOT_RETENTION_DAYS
from stacks.config.access import api_hostname, bastion, certificate
from stacks.config.clickhouse import clickhouse_topology, clickhouse_version
from stacks.config.instances import host_type, postgres_version, service_type, snapshot_window
from stacks.config.model import AZ_COUNTS, EGRESS, StackConfig
from stacks.config.names import name_prefix, tags
from stacks.config.secret_overrides import secret_values
from stacks.config.validate import PROJECT, at_most, count_of, gp3, one_of, positive


def load_stack_config(cfg: pulumi.Config | None = None) -> StackConfig:
    """Read and validate the stack config; raise StackConfigError naming the first bad key."""
    cfg = cfg or pulumi.Config(PROJECT)
    secrets = secret_values(cfg)
    stack = pulumi.get_stack()
    size = positive(cfg, "clickhouseVolumeSizeGb", 1500, minimum=10)
    iops = positive(cfg, "clickhouseVolumeIops", 6000)
    throughput = positive(cfg, "clickhouseVolumeThroughput", 250)
    gp3(size, iops, throughput)
    # One host is a working (not highly available) stack: dev stacks use it.
    app_count = positive(cfg, "appInstanceCount", 2, minimum=1)
    certificate_arn = certificate(cfg)
    az_count = count_of(cfg, "azCount", AZ_COUNTS, 3)
    return StackConfig(
        secrets=secrets,
        name_prefix=name_prefix(stack),
        bastion_cidr=bastion(cfg),
        egress=one_of(cfg, "egress", EGRESS, "nat"),
        nat_gateway_per_az=cfg.get_bool("natGatewayPerAz", True),
        az_count=az_count,
        flow_log_retention_days=count_of(
            cfg, "flowLogRetentionDays", limits.LOG_RETENTION_DAYS, 365
        ),
        internal_domain=cfg.get("internalDomain") or "adpulse.internal",
        # Debian's official images (owner: the Debian cloud team's account). Debian also
        # publishes /aws/service/debian/release/12/latest/arm64 in SSM; the name lookup keeps
        # the owner pinned in config, and find_ami adds the arm64 filter.
        ami_name_filter=cfg.get("amiNameFilter") or "debian-12-arm64-*",
        ami_owner=cfg.get("amiOwner") or "136693071363",
        clickhouse_instance_type=host_type(cfg, "clickhouseInstanceType", "r6g.2xlarge"),
        clickhouse_volume_size_gb=size,
        clickhouse_volume_iops=iops,
        clickhouse_volume_throughput=throughput,
        clickhouse_topology=clickhouse_topology(cfg, az_count),
        clickhouse_version=clickhouse_version(cfg),
        kafka_instance_type=one_of(
            cfg, "kafkaInstanceType", limits.MSK_BROKER_TYPES, "kafka.m7g.large"
        ),
        kafka_version=one_of(cfg, "kafkaVersion", limits.KAFKA_VERSIONS, "3.6.0"),
        kafka_volume_size_gb=at_most(cfg, "kafkaVolumeSizeGb", 1000, 1, limits.MSK_MAX_VOLUME_GIB),
        redis_node_type=service_type(
            cfg, "redisNodeType", "cache.m6g.large", "cache", limits.REDIS_FAMILIES
        ),
        redis_engine_version=one_of(cfg, "redisEngineVersion", limits.REDIS_VERSIONS, "7.1"),
        postgres_instance_class=service_type(
            cfg, "postgresInstanceClass", "db.t4g.medium", "db", limits.RDS_FAMILIES
        ),
        postgres_engine_version=postgres_version(cfg),
        postgres_multi_az=cfg.get_bool("postgresMultiAz", True),
        postgres_storage_gb=at_most(cfg, "postgresStorageGb", 50, *limits.RDS_GP3_GIB),
        app_instance_type=host_type(cfg, "appInstanceType", "t4g.large"),
        app_instance_count=app_count,
        certificate_arn=certificate_arn,
        api_hostname=api_hostname(cfg, certificate_arn),
        alarm_email=cfg.get("alarmEmail") or None,
        consumer_lag_threshold=positive(cfg, "consumerLagThreshold", 100_000),
        deletion_protection=cfg.get_bool("deletionProtection", True),
        default_tags=tags(cfg, stack),
        redis_snapshot_retention_days=at_most(
            cfg, "redisSnapshotRetentionDays", 7, *SNAPSHOT_RETENTION_DAYS
        ),
        redis_snapshot_window=snapshot_window(cfg),
        backup_retention_days=at_most(cfg, "backupRetentionDays", 14, 1, 3650),
        backup_version_retention_days=at_most(cfg, "backupVersionRetentionDays", 7, 1, 365),
        freshness_threshold_s=at_most(cfg, "freshnessThresholdSeconds", 300, 60, 86_400),
    )
