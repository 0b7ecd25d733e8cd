"""The stack's typed configuration, read once from `pulumi.Config()`.

Every check names the config key and says how to fix it, so `pulumi up` fails before it creates
anything rather than halfway through.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi.runtime.config import is_config_secret

from adpulse.topology import Topology
from stacks import aws_limits as limits
from stacks.cache import SNAPSHOT_RETENTION_DAYS, window_problem
from stacks.cluster_shape import DEFAULT_VERSION as CLICKHOUSE_VERSION
from stacks.cluster_shape import grid_topology

PROJECT = "adpulse"
EGRESS = ("nat", "endpoints")
# One MSK broker per AZ and stacks/msk.py places exactly three (BROKERS); two AZs would also
# need two brokers and replication factor 2.
AZ_COUNTS = (3,)
# Physical names are `adpulse-<stack>-...`; RDS allows 63 characters with a 26-character suffix.
_STACK_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_STACK_NAME_MAX = 20
_CERTIFICATE = re.compile(
    r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):[0-9]{12}:certificate/[0-9a-f-]{36}$"
)
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# Set on every taggable resource by stacks.default_tags; adpulse:tags may add others.
_OWN_TAGS = ("Project", "Stack", "ManagedBy")
_PLACEHOLDERS = {"changeme", "change-me", "password", "secret", "admin", "example"}
# ElastiCache refuses these in an AUTH token.
_REDIS_FORBIDDEN = set('@"/ ')


class StackConfigError(pulumi.RunError):
    """A config value is missing or invalid; the message names the key and the fix."""


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


def _key(name: str) -> str:
    return f"{PROJECT}:{name}"


def _secret(cfg: pulumi.Config, name: str, min_len: int, hint: str) -> pulumi.Output[str] | None:
    """Read an optional secret override; refuse plain-text or placeholder values."""
    how = (
        f"set it with `pulumi config set --secret {_key(name)} <value>` ({hint}), or remove "
        f"it (`pulumi config rm {_key(name)}`) and the stack generates one"
    )
    value = cfg.get(name)
    if not value:
        return None
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
    """gp3 rules (stacks.aws_limits): size, IOPS per GiB, MiB/s per IOPS, and the maxima."""
    if size > limits.GP3_MAX_GIB:
        raise StackConfigError(
            f"config {_key('clickhouseVolumeSizeGb')} is {size}; gp3 allows "
            f"10..{limits.GP3_MAX_GIB} GiB"
        )
    most_iops = min(limits.GP3_MAX_IOPS, limits.GP3_IOPS_PER_GIB * size)
    if iops < limits.GP3_MIN_IOPS or iops > most_iops:
        raise StackConfigError(
            f"config {_key('clickhouseVolumeIops')} is {iops}; gp3 allows "
            f"{limits.GP3_MIN_IOPS}..{most_iops} for a {size} GiB volume (500 IOPS per GiB, "
            f"{limits.GP3_MAX_IOPS} at most)"
        )
    most_mibs = min(limits.GP3_MAX_MIBS, iops // 4)
    if throughput < limits.GP3_MIN_MIBS or throughput > most_mibs:
        raise StackConfigError(
            f"config {_key('clickhouseVolumeThroughput')} is {throughput} MiB/s; gp3 allows "
            f"{limits.GP3_MIN_MIBS}..{most_mibs} at {iops} IOPS (0.25 MiB/s per IOPS, "
            f"{limits.GP3_MAX_MIBS} at most)"
        )


def _at_most(cfg: pulumi.Config, name: str, default: int, low: int, high: int) -> int:
    value = _positive(cfg, name, default, minimum=low)
    if value > high:
        raise StackConfigError(f"config {_key(name)} is {value}; allowed: {low}..{high}")
    return value


def _one_of(cfg: pulumi.Config, name: str, allowed: Sequence[str], default: str) -> str:
    value = cfg.get(name) or default
    if value not in allowed:
        raise StackConfigError(
            f"config {_key(name)} is {value!r}; allowed values: {', '.join(allowed)}"
        )
    return value


def _count_of(cfg: pulumi.Config, name: str, allowed: Sequence[int], default: int) -> int:
    value = cfg.get_int(name)
    if value is None:
        return default
    if value not in allowed:
        raise StackConfigError(
            f"config {_key(name)} is {value}; allowed values: {', '.join(map(str, allowed))}"
        )
    return value


def _host_type(cfg: pulumi.Config, name: str, default: str) -> str:
    """An EC2 type for a host: a Graviton family, since the hosts run Debian 12 arm64."""
    value = cfg.get(name) or default
    family = re.fullmatch(rf"([a-z0-9]+)\.{limits.INSTANCE_SIZE}", value)
    if not family or family.group(1) not in limits.GRAVITON_FAMILIES:
        raise StackConfigError(
            f"config {_key(name)} is {value!r}, not a Graviton (arm64) instance type; the hosts "
            f"run Debian 12 arm64. Allowed families: {', '.join(limits.GRAVITON_FAMILIES)} "
            f"(e.g. {default})"
        )
    return value


def _service_type(
    cfg: pulumi.Config, name: str, default: str, prefix: str, families: Sequence[str]
) -> str:
    """A managed-service node type such as `cache.t4g.medium` or `db.r6g.large`."""
    value = cfg.get(name) or default
    match = re.fullmatch(rf"{re.escape(prefix)}\.([a-z0-9]+)\.{limits.INSTANCE_SIZE}", value)
    if not match or match.group(1) not in families:
        raise StackConfigError(
            f"config {_key(name)} is {value!r}; allowed: {prefix}.<family>.<size> with family "
            f"one of {', '.join(families)} (e.g. {default})"
        )
    return value


def _postgres_version(cfg: pulumi.Config) -> str:
    value = cfg.get("postgresEngineVersion") or "16"
    if value.split(".")[0] not in limits.POSTGRES_MAJORS or not re.fullmatch(
        r"[0-9]+(\.[0-9]+)?", value
    ):
        raise StackConfigError(
            f"config {_key('postgresEngineVersion')} is {value!r}; allowed: a major version "
            f"({', '.join(limits.POSTGRES_MAJORS)}) or major.minor such as 16.4"
        )
    return value


def _certificate(cfg: pulumi.Config) -> str | None:
    """An ACM certificate ARN in the stack's own region (an ALB cannot use another's)."""
    raw = cfg.get("certificateArn")
    if not raw:
        return None
    match = _CERTIFICATE.fullmatch(raw)
    if not match:
        raise StackConfigError(
            f"config {_key('certificateArn')} {raw!r} is not an ACM certificate ARN; allowed "
            "form: arn:aws:acm:<region>:<12-digit account>:certificate/<36-character id>"
        )
    region = pulumi.Config("aws").get("region")
    if region and match.group("region") != region:
        raise StackConfigError(
            f"config {_key('certificateArn')} is in {match.group('region')}, but the load "
            f"balancer is in aws:region {region}; allowed: a certificate issued in {region}"
        )
    return raw


def _api_hostname(cfg: pulumi.Config, certificate_arn: str | None) -> str | None:
    """The host name machine clients use for the API through the load balancer."""
    raw = cfg.get("apiHostname")
    if not raw:
        return None
    if not _HOSTNAME.fullmatch(raw):
        raise StackConfigError(
            f"config {_key('apiHostname')} {raw!r} is not a DNS name; allowed: a lowercase "
            "name such as api.adpulse.example.com, pointed at the load balancer"
        )
    if not certificate_arn:
        raise StackConfigError(
            f"config {_key('apiHostname')} needs {_key('certificateArn')} (a certificate "
            "covering it): API keys must not cross the internet in clear"
        )
    return raw


def _name_prefix(stack: str) -> str:
    if len(stack) > _STACK_NAME_MAX or not _STACK_NAME.fullmatch(stack):
        raise StackConfigError(
            f"stack name {stack!r} cannot prefix AWS names: allowed are 1..{_STACK_NAME_MAX} "
            "lowercase letters, digits and single hyphens, starting with a letter "
            "(e.g. `pulumi stack init dev`)"
        )
    return f"{PROJECT}-{stack}"


def _tags(cfg: pulumi.Config, stack: str) -> dict[str, str]:
    extra = cfg.get_object("tags") or {}
    allowed = "allowed: a map of strings, keys up to 128 and values up to 256 characters"
    if not isinstance(extra, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in extra.items()
    ):
        raise StackConfigError(f"config {_key('tags')} must be a map of strings; {allowed}")
    for key, value in extra.items():
        if key in _OWN_TAGS or key.lower().startswith("aws:"):
            raise StackConfigError(
                f"config {_key('tags')} sets {key!r}, which the stack sets itself or AWS "
                f"reserves; allowed: any key but {', '.join(_OWN_TAGS)} and aws:*"
            )
        if not 0 < len(key) <= 128 or len(value) > 256:
            raise StackConfigError(f"config {_key('tags')} has {key!r}; {allowed}")
    return {"Project": PROJECT, "Stack": stack, "ManagedBy": "pulumi", **extra}


def _snapshot_window(cfg: pulumi.Config) -> str:
    value = cfg.get("redisSnapshotWindow") or "03:00-04:00"
    problem = window_problem(value)
    if problem:
        raise StackConfigError(f"config {_key('redisSnapshotWindow')} is {value!r}; {problem}")
    return value


_CLICKHOUSE_SHAPE = re.compile(r"([1-9][0-9]*)x([1-9][0-9]*)")
_CLICKHOUSE_MAX_SHARDS = 10
_CLICKHOUSE_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")


def _clickhouse_topology(cfg: pulumi.Config, az_count: int) -> Topology:
    """`SHARDSxREPLICAS`; a shard's replicas sit in different AZs, so at most one per AZ."""
    name = "clickhouseTopology"
    raw = cfg.get(name) or "1x3"
    allowed = (
        f"allowed: SHARDSxREPLICAS with 1..{_CLICKHOUSE_MAX_SHARDS} shards and 1..{az_count} "
        f"replicas (one per AZ; {_key('azCount')} is {az_count}), e.g. 1x3 (the default), 2x2 "
        "or 1x1; a replicated shape needs 3 or more nodes for its Keeper quorum"
    )
    match = _CLICKHOUSE_SHAPE.fullmatch(raw.strip().lower())
    if not match:
        raise StackConfigError(f"config {_key(name)} is {raw!r}; {allowed}")
    shards, replicas = int(match.group(1)), int(match.group(2))
    if shards > _CLICKHOUSE_MAX_SHARDS or replicas > az_count:
        raise StackConfigError(f"config {_key(name)} is {raw!r}; {allowed}")
    try:
        return grid_topology(shards, replicas)
    except ValueError as exc:
        raise StackConfigError(f"config {_key(name)}: {exc}; {allowed}") from None


def _clickhouse_version(cfg: pulumi.Config) -> str:
    value = cfg.get("clickhouseVersion") or CLICKHOUSE_VERSION
    if not _CLICKHOUSE_VERSION.fullmatch(value):
        raise StackConfigError(
            f"config {_key('clickhouseVersion')} is {value!r}; allowed: a full release number "
            f"as ClickHouse's apt repository lists it, all four parts, such as "
            f"{CLICKHOUSE_VERSION} (every node installs exactly this build)"
        )
    return value


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
    if token and (len(token) > 128 or _REDIS_FORBIDDEN & set(token)):
        raise StackConfigError(
            f"config {_key('redisAuthToken')} must be 16..128 printable characters without "
            '@, ", / or spaces; generate one with `openssl rand -hex 32`'
        )
    stack = pulumi.get_stack()
    size = _positive(cfg, "clickhouseVolumeSizeGb", 500, minimum=10)
    iops = _positive(cfg, "clickhouseVolumeIops", 6000)
    throughput = _positive(cfg, "clickhouseVolumeThroughput", 250)
    _gp3(size, iops, throughput)
    # One host is a working (not highly available) stack: dev stacks use it.
    app_count = _positive(cfg, "appInstanceCount", 2, minimum=1)
    certificate_arn = _certificate(cfg)
    az_count = _count_of(cfg, "azCount", AZ_COUNTS, 3)
    return StackConfig(
        secrets=secrets,
        name_prefix=_name_prefix(stack),
        bastion_cidr=_bastion(cfg),
        egress=_one_of(cfg, "egress", EGRESS, "nat"),
        nat_gateway_per_az=cfg.get_bool("natGatewayPerAz", True),
        az_count=az_count,
        flow_log_retention_days=_count_of(
            cfg, "flowLogRetentionDays", limits.LOG_RETENTION_DAYS, 365
        ),
        internal_domain=cfg.get("internalDomain") or "adpulse.internal",
        # Debian's official images (owner: the Debian cloud team's account). Debian also
        # publishes /aws/service/debian/release/12/latest/arm64 in SSM; the name lookup keeps
        # the owner pinned in config, and find_ami adds the arm64 filter.
        ami_name_filter=cfg.get("amiNameFilter") or "debian-12-arm64-*",
        ami_owner=cfg.get("amiOwner") or "136693071363",
        clickhouse_instance_type=_host_type(cfg, "clickhouseInstanceType", "r6g.2xlarge"),
        clickhouse_volume_size_gb=size,
        clickhouse_volume_iops=iops,
        clickhouse_volume_throughput=throughput,
        clickhouse_topology=_clickhouse_topology(cfg, az_count),
        clickhouse_version=_clickhouse_version(cfg),
        kafka_instance_type=_one_of(
            cfg, "kafkaInstanceType", limits.MSK_BROKER_TYPES, "kafka.m7g.large"
        ),
        kafka_version=_one_of(cfg, "kafkaVersion", limits.KAFKA_VERSIONS, "3.6.0"),
        kafka_volume_size_gb=_at_most(cfg, "kafkaVolumeSizeGb", 500, 1, limits.MSK_MAX_VOLUME_GIB),
        redis_node_type=_service_type(
            cfg, "redisNodeType", "cache.t4g.medium", "cache", limits.REDIS_FAMILIES
        ),
        redis_engine_version=_one_of(cfg, "redisEngineVersion", limits.REDIS_VERSIONS, "7.1"),
        postgres_instance_class=_service_type(
            cfg, "postgresInstanceClass", "db.t4g.medium", "db", limits.RDS_FAMILIES
        ),
        postgres_engine_version=_postgres_version(cfg),
        postgres_multi_az=cfg.get_bool("postgresMultiAz", True),
        postgres_storage_gb=_at_most(cfg, "postgresStorageGb", 50, *limits.RDS_GP3_GIB),
        app_instance_type=_host_type(cfg, "appInstanceType", "t4g.large"),
        app_instance_count=app_count,
        certificate_arn=certificate_arn,
        api_hostname=_api_hostname(cfg, certificate_arn),
        alarm_email=cfg.get("alarmEmail") or None,
        consumer_lag_threshold=_positive(cfg, "consumerLagThreshold", 100_000),
        deletion_protection=cfg.get_bool("deletionProtection", True),
        default_tags=_tags(cfg, stack),
        redis_snapshot_retention_days=_at_most(
            cfg, "redisSnapshotRetentionDays", 7, *SNAPSHOT_RETENTION_DAYS
        ),
        redis_snapshot_window=_snapshot_window(cfg),
        backup_retention_days=_at_most(cfg, "backupRetentionDays", 14, 1, 3650),
        backup_version_retention_days=_at_most(cfg, "backupVersionRetentionDays", 7, 1, 365),
        freshness_threshold_s=_at_most(cfg, "freshnessThresholdSeconds", 300, 60, 86_400),
    )
