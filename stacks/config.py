"""The stack's typed configuration, read once from `pulumi.Config()`.

Every check names the config key and says how to fix it, so `pulumi up` fails before it creates
anything rather than halfway through.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
from pulumi.runtime.config import is_config_secret

PROJECT = "adpulse"
_PLACEHOLDERS = {"changeme", "change-me", "password", "secret", "admin", "example"}
# ElastiCache refuses these in an AUTH token.
_REDIS_FORBIDDEN = set('@"/ ')


class StackConfigError(pulumi.RunError):
    """A config value is missing or invalid; the message names the key and the fix."""


@dataclass(frozen=True)
class SecretValues:
    """Values that must come from `pulumi config set --secret`; each is a secret Output."""

    clickhouse_admin_password: pulumi.Output[str]
    clickhouse_ingest_password: pulumi.Output[str]
    clickhouse_api_password: pulumi.Output[str]
    clickhouse_cluster_secret: pulumi.Output[str]
    redis_auth_token: pulumi.Output[str]


@dataclass(frozen=True)
class StackConfig:
    """Everything the program reads from config; defaults are the production shape."""

    secrets: SecretValues
    bastion_cidr: str | None
    enable_vpc_endpoints: bool
    nat_gateway_per_az: bool
    internal_domain: str
    ami_name_filter: str
    ami_owner: str
    clickhouse_instance_type: str
    clickhouse_volume_size_gb: int
    clickhouse_volume_iops: int
    clickhouse_volume_throughput: int
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
    alarm_email: str | None
    consumer_lag_threshold: int
    deletion_protection: bool


def _key(name: str) -> str:
    return f"{PROJECT}:{name}"


def _secret(cfg: pulumi.Config, name: str, min_len: int, hint: str) -> pulumi.Output[str]:
    """Read a secret config value and refuse missing, plain-text or placeholder values."""
    how = f"set it with `pulumi config set --secret {_key(name)} <value>` ({hint})"
    value = cfg.get(name)
    if not value:
        raise StackConfigError(f"config {_key(name)} is missing: {how}")
    if not is_config_secret(_key(name)):
        raise StackConfigError(f"config {_key(name)} is stored in plain text: {how}")
    if value.lower() in _PLACEHOLDERS or len(value) < min_len:
        raise StackConfigError(
            f"config {_key(name)} is a placeholder or shorter than {min_len} characters: {how}"
        )
    return pulumi.Output.secret(value)


def _positive(cfg: pulumi.Config, name: str, default: int, minimum: int = 1) -> int:
    value = cfg.get_int(name)
    if value is None:
        return default
    if value < minimum:
        raise StackConfigError(f"config {_key(name)} is {value}; it must be at least {minimum}")
    return value


def _bastion(cfg: pulumi.Config) -> str | None:
    raw = cfg.get("bastionCidr")
    if not raw:
        return None
    try:
        net = ipaddress.ip_network(raw, strict=True)
    except ValueError as exc:
        raise StackConfigError(f"config {_key('bastionCidr')} {raw!r}: {exc}") from None
    if net.prefixlen == 0:
        raise StackConfigError(
            f"config {_key('bastionCidr')} {raw!r} opens SSH to the whole internet; give your "
            "bastion's /32, or leave it unset and use SSM Session Manager"
        )
    return str(net)


def _gp3(size: int, iops: int, throughput: int) -> None:
    """gp3 rules: at least 3000 IOPS and 125 MiB/s, IOPS <= 500/GiB, MiB/s <= IOPS/4."""
    if iops < 3000 or iops > 500 * size:
        raise StackConfigError(
            f"config {_key('clickhouseVolumeIops')} is {iops}; gp3 allows 3000..{500 * size} "
            f"for a {size} GiB volume (500 IOPS per GiB)"
        )
    if throughput < 125 or throughput > iops // 4:
        raise StackConfigError(
            f"config {_key('clickhouseVolumeThroughput')} is {throughput} MiB/s; gp3 allows "
            f"125..{iops // 4} at {iops} IOPS (0.25 MiB/s per IOPS)"
        )


def load_stack_config(cfg: pulumi.Config | None = None) -> StackConfig:
    """Read and validate the stack config; raise StackConfigError naming the first bad key."""
    cfg = cfg or pulumi.Config(PROJECT)
    secrets = SecretValues(
        clickhouse_admin_password=_secret(cfg, "clickhouseAdminPassword", 12, "12+ characters"),
        clickhouse_ingest_password=_secret(cfg, "clickhouseIngestPassword", 12, "12+ characters"),
        clickhouse_api_password=_secret(cfg, "clickhouseApiPassword", 12, "12+ characters"),
        clickhouse_cluster_secret=_secret(cfg, "clickhouseClusterSecret", 16, "16+ characters"),
        redis_auth_token=_secret(
            cfg, "redisAuthToken", 16, '16..128 characters, no @ " / or space'
        ),
    )
    token = cfg.get("redisAuthToken") or ""
    if len(token) > 128 or _REDIS_FORBIDDEN & set(token):
        raise StackConfigError(
            f"config {_key('redisAuthToken')} must be 16..128 printable characters without "
            '@, ", / or spaces; generate one with `openssl rand -hex 32`'
        )
    size = _positive(cfg, "clickhouseVolumeSizeGb", 500, minimum=10)
    iops = _positive(cfg, "clickhouseVolumeIops", 6000)
    throughput = _positive(cfg, "clickhouseVolumeThroughput", 250)
    _gp3(size, iops, throughput)
    app_count = _positive(cfg, "appInstanceCount", 2, minimum=2)
    return StackConfig(
        secrets=secrets,
        bastion_cidr=_bastion(cfg),
        enable_vpc_endpoints=cfg.get_bool("enableVpcEndpoints", False),
        nat_gateway_per_az=cfg.get_bool("natGatewayPerAz", True),
        internal_domain=cfg.get("internalDomain") or "adpulse.internal",
        ami_name_filter=cfg.get("amiNameFilter")
        or "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*",
        ami_owner=cfg.get("amiOwner") or "099720109477",  # Canonical
        clickhouse_instance_type=cfg.get("clickhouseInstanceType") or "r6g.2xlarge",
        clickhouse_volume_size_gb=size,
        clickhouse_volume_iops=iops,
        clickhouse_volume_throughput=throughput,
        kafka_instance_type=cfg.get("kafkaInstanceType") or "kafka.m7g.large",
        kafka_version=cfg.get("kafkaVersion") or "3.6.0",
        kafka_volume_size_gb=_positive(cfg, "kafkaVolumeSizeGb", 500, minimum=1),
        redis_node_type=cfg.get("redisNodeType") or "cache.t4g.medium",
        redis_engine_version=cfg.get("redisEngineVersion") or "7.1",
        postgres_instance_class=cfg.get("postgresInstanceClass") or "db.t4g.medium",
        postgres_engine_version=cfg.get("postgresEngineVersion") or "16",
        postgres_multi_az=cfg.get_bool("postgresMultiAz", True),
        postgres_storage_gb=_positive(cfg, "postgresStorageGb", 50, minimum=20),
        app_instance_type=cfg.get("appInstanceType") or "t4g.large",
        app_instance_count=app_count,
        certificate_arn=cfg.get("certificateArn") or None,
        alarm_email=cfg.get("alarmEmail") or None,
        consumer_lag_threshold=_positive(cfg, "consumerLagThreshold", 100_000),
        deletion_protection=cfg.get_bool("deletionProtection", True),
    )
