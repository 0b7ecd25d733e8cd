"""Policies on S3: the backups bucket and how it is protected.

A bucket's settings live in resources of their own (public access block, encryption,
versioning, lifecycle) that name the bucket; the inline forms on the bucket count too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from stacks.inventory import Inventory, Resource
from stacks.policy.base import Finding, dig, each, policy, refs

BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
VERSIONING = (
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketVersioningV2:BucketVersioningV2",
)
LIFECYCLE = (
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
)
_BLOCKS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _settings_for(
    inventory: Inventory, bucket: Resource, types: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The settings of every resource of these types that names this bucket."""
    names = refs(bucket) | {str(bucket.settings.get("bucket", ""))}
    return [s for _, s in each(inventory, *types) if s.get("bucket") in names - {""}]


def _each_bucket(
    inventory: Inventory, ok: Callable[[Resource, dict[str, Any]], bool], problem: str
) -> Iterator[Finding]:
    for bucket, settings in each(inventory, *BUCKETS):
        if not ok(bucket, settings):
            yield Finding(bucket.name, problem)


@policy("s3-backups-bucket", "The stack has an S3 bucket for ClickHouse backups")
def backups_bucket(inventory: Inventory) -> Iterator[Finding]:
    if not any(each(inventory, *BUCKETS)):
        yield Finding("(stack)", "no S3 bucket: ClickHouse's BACKUP ... TO S3 has nowhere to go")


@policy(
    "s3-public-access-block",
    "Every bucket blocks public ACLs and policies",
    BUCKETS,
    ("CKV2_AWS_6", "CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56"),
)
def public_access_block(inventory: Inventory) -> Iterator[Finding]:
    yield from _each_bucket(
        inventory,
        lambda b, _: any(
            all(s.get(k) is True for k in _BLOCKS)
            for s in _settings_for(inventory, b, (ACCESS_BLOCK,))
        ),
        f"no public access block with all of {', '.join(_BLOCKS)}",
    )


def _kms_default(configs: list[dict[str, Any]]) -> bool:
    return any(
        str(dig(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")).startswith("aws:kms")
        for config in configs
        for rule in config.get("rules") or [config.get("rule") or {}]
    )


@policy(
    "s3-encryption",
    "Every bucket encrypts new objects with KMS by default",
    BUCKETS,
    ("CKV_AWS_19", "CKV_AWS_145"),
)
def encryption(inventory: Inventory) -> Iterator[Finding]:
    yield from _each_bucket(
        inventory,
        lambda b, s: (
            _kms_default(_settings_for(inventory, b, ENCRYPTION))
            or _kms_default([s.get("serverSideEncryptionConfiguration") or {}])
        ),
        "no default KMS encryption (aws:kms)",
    )


@policy("s3-versioning", "Every bucket keeps object versions", BUCKETS, ("CKV_AWS_21",))
def versioning(inventory: Inventory) -> Iterator[Finding]:
    yield from _each_bucket(
        inventory,
        lambda b, s: (
            any(
                dig(v, "versioningConfiguration", "status") == "Enabled"
                for v in _settings_for(inventory, b, VERSIONING)
            )
            or dig(s, "versioning", "enabled") is True
        ),
        "versioning is not Enabled: an overwritten or deleted backup is gone",
    )


@policy(
    "s3-lifecycle",
    "Every bucket expires old objects by a lifecycle rule",
    BUCKETS,
    ("CKV2_AWS_61",),
)
def lifecycle(inventory: Inventory) -> Iterator[Finding]:
    yield from _each_bucket(
        inventory,
        lambda b, s: (
            any(
                rule.get("status") == "Enabled"
                for config in _settings_for(inventory, b, LIFECYCLE)
                for rule in config.get("rules") or []
            )
            or any(rule.get("enabled") for rule in s.get("lifecycleRules") or [])
        ),
        "no enabled lifecycle rule: backups and old versions are kept (and billed) forever",
    )
