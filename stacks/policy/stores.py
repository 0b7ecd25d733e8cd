"""Policies on the managed data stores: MSK, ElastiCache Redis and RDS Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from stacks.inventory import Inventory
from stacks.mocks import is_secret_marked
from stacks.policy.base import MIN_BACKUP_DAYS, Finding, customer_key, dig, each, policy, require

MSK = "aws:msk/cluster:Cluster"
REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
RDS = "aws:rds/instance:Instance"


@policy(
    "msk-encryption-in-transit",
    "MSK speaks TLS only, between clients and brokers and between brokers",
    (MSK,),
    ("CKV_AWS_81",),
)
def msk_in_transit(inventory: Inventory) -> Iterator[Finding]:
    yield from require(
        inventory,
        (MSK,),
        lambda s: (
            dig(s, "encryptionInfo", "encryptionInTransit", "clientBroker") == "TLS"
            and dig(s, "encryptionInfo", "encryptionInTransit", "inCluster") is not False
        ),
        "encryptionInTransit is not clientBroker=TLS with inCluster encryption",
    )


@policy(
    "msk-encryption-at-rest",
    "MSK encrypts its volumes with the stack's KMS key",
    (MSK,),
    # CKV_AWS_81 passes without a key (MSK then uses the AWS-managed one): no checkov twin.
)
def msk_at_rest(inventory: Inventory) -> Iterator[Finding]:
    yield from require(
        inventory,
        (MSK,),
        lambda s: customer_key(dig(s, "encryptionInfo", "encryptionAtRestKmsKeyArn")),
        "no encryptionAtRestKmsKeyArn: the brokers' disks use the AWS-managed key",
    )


@policy("msk-logging", "MSK broker logs are delivered", (MSK,), ("CKV_AWS_80",))
def msk_logging(inventory: Inventory) -> Iterator[Finding]:
    sinks = ("cloudwatchLogs", "firehose", "s3")
    yield from require(
        inventory,
        (MSK,),
        lambda s: any(dig(s, "loggingInfo", "brokerLogs", k, "enabled") for k in sinks),
        "no broker log delivery enabled (loggingInfo.brokerLogs)",
    )


@policy(
    "msk-client-auth",
    "MSK admits only authenticated clients (SASL/SCRAM, IAM or TLS certificates)",
    (MSK,),
)
def msk_client_auth(inventory: Inventory) -> Iterator[Finding]:
    for resource, settings in each(inventory, MSK):
        auth = settings.get("clientAuthentication") or {}
        methods = [dig(auth, "sasl", "scram"), dig(auth, "sasl", "iam")]
        methods.append(bool(dig(auth, "tls", "certificateAuthorityArns")))
        if auth.get("unauthenticated") is True:
            yield Finding(resource.name, "clientAuthentication.unauthenticated is true")
        elif not any(m is True for m in methods):
            yield Finding(resource.name, "no SASL/SCRAM, IAM or TLS client authentication")


@policy(
    "msk-private",
    "MSK brokers have no public access",
    (MSK,),
    ("CKV_AWS_291",),
)
def msk_private(inventory: Inventory) -> Iterator[Finding]:
    path = ("brokerNodeGroupInfo", "connectivityInfo", "publicAccess", "type")
    yield from require(
        inventory,
        (MSK,),
        lambda s: dig(s, *path) in (None, "DISABLED"),
        "brokers have public access",
    )


@policy(
    "redis-encryption-at-rest",
    "Redis encrypts data at rest with the stack's KMS key",
    (REDIS,),
    ("CKV_AWS_29", "CKV_AWS_191"),
)
def redis_at_rest(inventory: Inventory) -> Iterator[Finding]:
    yield from require(
        inventory,
        (REDIS,),
        lambda s: s.get("atRestEncryptionEnabled") is True and customer_key(s.get("kmsKeyId")),
        "not encrypted at rest with a customer-managed KMS key",
    )


@policy(
    "redis-encryption-in-transit",
    "Redis speaks TLS only",
    (REDIS,),
    ("CKV_AWS_30",),
)
def redis_in_transit(inventory: Inventory) -> Iterator[Finding]:
    yield from require(
        inventory,
        (REDIS,),
        lambda s: (
            s.get("transitEncryptionEnabled") is True
            and s.get("transitEncryptionMode", "required") == "required"
        ),
        "transit encryption is off or not required",
    )


@policy(
    "redis-auth-token",
    "Redis requires an AUTH token, held as a Pulumi secret",
    (REDIS,),
    ("CKV_AWS_31",),
)
def redis_auth(inventory: Inventory) -> Iterator[Finding]:
    for resource in inventory.of_type(REDIS):
        token = resource.inputs.get("authToken")
        if not token:
            yield Finding(resource.name, "no authToken: any host in the group's SG can connect")
        elif not is_secret_marked(token):
            yield Finding(resource.name, "authToken is not a Pulumi secret: it is in the state")


@policy(
    "redis-snapshots",
    f"Redis keeps at least {MIN_BACKUP_DAYS} days of automatic snapshots",
    (REDIS,),
)
def redis_snapshots(inventory: Inventory) -> Iterator[Finding]:
    for resource, settings in each(inventory, REDIS):
        days = settings.get("snapshotRetentionLimit") or 0
        if days < MIN_BACKUP_DAYS:
            yield Finding(resource.name, f"snapshotRetentionLimit is {days:g} days")


@policy(
    "redis-multi-az",
    "Redis fails over automatically to a replica in another AZ",
    (REDIS,),
)
def redis_multi_az(inventory: Inventory) -> Iterator[Finding]:
    yield from require(
        inventory,
        (REDIS,),
        lambda s: s.get("automaticFailoverEnabled") is True and s.get("multiAzEnabled") is True,
        "automatic failover or Multi-AZ is off",
    )


@policy(
    "rds-encrypted",
    "Postgres storage is encrypted with the stack's KMS key",
    (RDS,),
    ("CKV_AWS_16",),
)
def rds_encrypted(inventory: Inventory) -> Iterator[Finding]:
    yield from require(
        inventory,
        (RDS,),
        lambda s: s.get("storageEncrypted") is True and customer_key(s.get("kmsKeyId")),
        "storage is not encrypted with a customer-managed KMS key",
    )


@policy("rds-private", "Postgres is not publicly accessible", (RDS,), ("CKV_AWS_17",))
def rds_private(inventory: Inventory) -> Iterator[Finding]:
    yield from require(
        inventory,
        (RDS,),
        lambda s: s.get("publiclyAccessible") is not True,
        "publiclyAccessible is true",
    )


@policy("rds-multi-az", "Postgres runs Multi-AZ", (RDS,), ("CKV_AWS_157",))
def rds_multi_az(inventory: Inventory) -> Iterator[Finding]:
    yield from require(inventory, (RDS,), lambda s: s.get("multiAz") is True, "multiAz is not true")


@policy(
    "rds-deletion-protection",
    "Postgres has deletion protection",
    (RDS,),
    ("CKV_AWS_293",),
)
def rds_deletion_protection(inventory: Inventory) -> Iterator[Finding]:
    yield from require(
        inventory,
        (RDS,),
        lambda s: s.get("deletionProtection") is True,
        "deletionProtection is not true",
    )


@policy(
    "rds-backups",
    f"Postgres keeps at least {MIN_BACKUP_DAYS} days of automated backups",
    (RDS,),
    ("CKV_AWS_133",),
)
def rds_backups(inventory: Inventory) -> Iterator[Finding]:
    for resource, settings in each(inventory, RDS):
        days = settings.get("backupRetentionPeriod") or 0
        if days < MIN_BACKUP_DAYS:
            yield Finding(resource.name, f"backupRetentionPeriod is {days:g} days")


@policy(
    "rds-iam-auth",
    "Postgres accepts IAM authentication tokens besides passwords",
    (RDS,),
    ("CKV_AWS_161",),
)
def rds_iam_auth(inventory: Inventory) -> Iterator[Finding]:
    yield from require(
        inventory,
        (RDS,),
        lambda s: s.get("iamDatabaseAuthenticationEnabled") is True,
        "iamDatabaseAuthenticationEnabled is not true",
    )


def _export(inventory: Inventory, name: str) -> object:
    return next((e.value for e in inventory.exports if e.name == name), None)


@policy(
    "rds-services-not-master",
    "The services do not use the database master login: postgres_url names their own user, "
    "and postgres_password_secret_arn is not the master's secret",
    (RDS,),
)
def rds_services_not_master(inventory: Inventory) -> Iterator[Finding]:
    url = _export(inventory, "postgres_url")
    secret_arn = _export(inventory, "postgres_password_secret_arn")
    for resource, settings in each(inventory, RDS):
        master = settings.get("username")
        if isinstance(url, str) and master and urlsplit(url).username == master:
            yield Finding(
                "output postgres_url",
                f"logs in as {master}, the master user of {resource.name}: RDS rotates its "
                "password and it owns every table",
            )
        master_secrets = resource.outputs.get("masterUserSecrets") or []
        master_arns = {s.get("secretArn") for s in master_secrets if isinstance(s, dict)}
        if secret_arn and secret_arn in master_arns:
            yield Finding(
                "output postgres_password_secret_arn",
                f"is the master login's secret of {resource.name}",
            )
