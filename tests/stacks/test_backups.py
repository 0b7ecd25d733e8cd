"""The backups bucket: private, versioned, encrypted with the stack's key, TLS only, expiring;
the ClickHouse role may write and read it, nobody else is given anything."""

from __future__ import annotations

import json
from types import ModuleType

import pulumi
import pytest
from pulumi import Output

from stacks.backups import BACKSTOP_DAYS, bucket_prefix, tls_only_policy, writer_policy
from stacks.config import StackConfig, StackConfigError, load_stack_config
from stacks.mocks import Mocks, Recorded
from tests.stacks.conftest import (
    CONFIG,
    SECRETS,
    of_type,
    pulumi_test,
    set_config,
)

BUCKET_ID = "adpulse-backups-bucket-id"  # what the mocks call the bucket
BUCKET_ARN = f"arn:aws:s3:us-east-1:123456789012:{BUCKET_ID}"


def only(mocks: Mocks, typ: str) -> Recorded:
    found = [r for r in of_type(mocks, typ) if r.name.startswith("adpulse-backups")]
    assert len(found) == 1, [r.name for r in found]
    return found[0]


def load_config(**changes: str) -> StackConfig:
    try:
        set_config({**CONFIG, **{f"adpulse:{k}": v for k, v in changes.items()}}, list(SECRETS))
        return load_stack_config(pulumi.Config("adpulse"))
    finally:
        set_config(CONFIG, list(SECRETS))


def test_one_bucket_named_for_the_stack_and_protected(mocks: Mocks) -> None:
    bucket = only(mocks, "aws:s3/bucket:Bucket")
    # A prefix, not a name: bucket names are global, S3 adds a unique suffix.
    assert bucket.inputs["bucketPrefix"] == "adpulse-test-backups-"
    assert bucket.inputs.get("forceDestroy") is False, "deletionProtection is on by default"


def test_public_access_is_blocked_and_acls_are_off(mocks: Mocks) -> None:
    block = only(mocks, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert block.inputs["bucket"] == BUCKET_ID
    for flag in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block.inputs[flag] is True, flag
    ownership = only(mocks, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def test_versioned_and_encrypted_with_the_stack_key(mocks: Mocks) -> None:
    versioning = only(mocks, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    (key,) = of_type(mocks, "aws:kms/key:Key")
    encryption = only(
        mocks,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    )
    (rule,) = encryption.inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": f"arn:aws:kms:us-east-1:123456789012:{key.id}",
    }
    assert rule["bucketKeyEnabled"] is True


def test_lifecycle_expires_backups_after_the_timer_and_versions_after_a_week(
    program: ModuleType, mocks: Mocks
) -> None:
    lifecycle = only(mocks, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    (rule,) = lifecycle.inputs["rules"]
    assert rule["status"] == "Enabled" and rule["filter"] == {}
    retention = program.cfg.backup_retention_days
    assert retention == 14
    assert rule["expiration"] == {"days": retention + BACKSTOP_DAYS}
    assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": 7}
    assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}
    # The timer on the backup replica keeps exactly the configured days, fewer than the bucket.
    assert program.backups.retention_days == retention < program.backups.expire_after_days


def test_requests_without_tls_are_denied(mocks: Mocks) -> None:
    policy = only(mocks, "aws:s3/bucketPolicy:BucketPolicy")
    assert policy.inputs["bucket"] == BUCKET_ID
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    assert statement == {
        "Sid": "DenyWithoutTls",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def test_the_clickhouse_role_and_only_it_may_write_and_read(mocks: Mocks) -> None:
    policy = only(mocks, "aws:iam/policy:Policy")
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert statements["ListBackups"]["Resource"] == BUCKET_ARN
    objects = statements["WriteAndReadBackups"]
    assert objects["Resource"] == f"{BUCKET_ARN}/*"
    assert {"s3:PutObject", "s3:GetObject"} <= set(objects["Action"])
    granted = {a for s in statements.values() for a in s["Action"]}
    assert not any("Version" in a or "Policy" in a or "Lifecycle" in a for a in granted), granted
    attachments = [
        a
        for a in of_type(mocks, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["policyArn"].endswith(policy.id)
    ]
    assert [a.inputs["role"] for a in attachments] == ["adpulse-clickhouse-role-abc123"]


@pulumi_test
def test_the_bucket_reaches_one_replicas_backup_timer(program: ModuleType) -> Output[None]:
    """stacks/clickhouse.py renders the BACKUP timer into one node's user data, with our bucket."""
    hosts = sorted(program.clickhouse.user_data)

    def check(texts: list[str]) -> None:
        with_bucket = [h for h, text in zip(hosts, texts, strict=True) if BUCKET_ID in text]
        assert len(with_bucket) == 1, with_bucket

    return Output.all(*(program.clickhouse.user_data[h] for h in hosts)).apply(check)


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("backupRetentionDays", "0", "at least 1"),
        ("backupRetentionDays", "4000", "allowed: 1..3650"),
        ("backupVersionRetentionDays", "0", "at least 1"),
    ],
)
def test_bad_retention_names_the_key(
    program: ModuleType, key: str, value: str, allowed: str
) -> None:
    with pytest.raises(StackConfigError, match=f"adpulse:{key} is {value}") as err:
        load_config(**{key: value})
    assert allowed in str(err.value)


def test_retention_comes_from_config(program: ModuleType) -> None:
    cfg = load_config(backupRetentionDays="30", backupVersionRetentionDays="3")
    assert (cfg.backup_retention_days, cfg.backup_version_retention_days) == (30, 3)


def test_a_stack_name_too_long_for_a_bucket_prefix_is_refused() -> None:
    assert bucket_prefix("adpulse-prod") == "adpulse-prod-backups-"
    with pytest.raises(ValueError, match="longer than S3's 37 characters"):
        bucket_prefix("adpulse-" + "x" * 21)


def test_policies_as_json() -> None:
    writer = json.loads(writer_policy("arn:aws:s3:::b", "arn:aws:kms:r:1:key/k"))
    kms = [s for s in writer["Statement"] if s["Sid"] == "UseTheBucketKey"]
    assert kms == [
        {
            "Sid": "UseTheBucketKey",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": "arn:aws:kms:r:1:key/k",
        }
    ]
    deny = json.loads(tls_only_policy("arn:aws:s3:::b"))["Statement"][0]
    assert deny["Resource"] == ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]
