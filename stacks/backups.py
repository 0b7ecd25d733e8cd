"""The ClickHouse backups bucket: versioned, KMS-encrypted, private, TLS only, expiring by age.

ClickHouse writes `BACKUP ... TO S3(...)` here from one replica on a timer (stacks/clickhouse.py)
that deletes backups older than `retention_days` once a newer one succeeded; the restore drill
is in stacks/README.md. The host role may write and read objects but not delete old versions or
change the bucket: a compromised node can hide a backup (a delete marker) but not destroy it
before the lifecycle does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
from pulumi import ResourceOptions

# S3 caps a generated-name prefix at 37 characters (the rest is a unique suffix).
BUCKET_PREFIX_MAX = 37
ABORT_UPLOADS_AFTER_DAYS = 1
# The lifecycle expires what the timer leaves behind (a stray or half-written backup) this long
# after the timer would have: later than the timer, so normally it is the timer that deletes,
# and only after as many days without one good backup would the newest go too.
BACKSTOP_DAYS = 7


def bucket_prefix(name_prefix: str) -> str:
    """`<name_prefix>-backups-`, lowercase; S3 adds a unique suffix (bucket names are global)."""
    prefix = f"{name_prefix}-backups-".lower()
    if len(prefix) > BUCKET_PREFIX_MAX:
        raise ValueError(
            f"BackupsArgs.name_prefix {name_prefix!r} makes the bucket prefix {prefix!r} longer "
            f"than S3's {BUCKET_PREFIX_MAX} characters; use a shorter stack name"
        )
    return prefix


def writer_policy(bucket_arn: str, key_arn: str) -> str:
    """Write, read and list backups under the stack's key; no version deletes, no bucket admin."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ListBackups",
                    "Effect": "Allow",
                    "Action": [
                        "s3:ListBucket",
                        "s3:GetBucketLocation",
                        "s3:ListBucketMultipartUploads",
                    ],
                    "Resource": bucket_arn,
                },
                {
                    "Sid": "WriteAndReadBackups",
                    "Effect": "Allow",
                    "Action": [
                        "s3:PutObject",
                        "s3:GetObject",
                        # ClickHouse removes what a failed BACKUP left; versioning keeps it.
                        "s3:DeleteObject",
                        "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts",
                    ],
                    "Resource": f"{bucket_arn}/*",
                },
                {
                    "Sid": "UseTheBucketKey",
                    "Effect": "Allow",
                    "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                    "Resource": key_arn,
                },
            ],
        }
    )


def tls_only_policy(bucket_arn: str) -> str:
    """Refuse every request that does not arrive over TLS, whoever sends it."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyWithoutTls",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


@dataclass
class BackupsArgs:
    name_prefix: str  # `adpulse-<stack>`
    kms_key_arn: pulumi.Input[str]
    # Roles that write and read backups (the ClickHouse hosts').
    writer_role_names: Sequence[pulumi.Input[str]] = field(default_factory=list)
    retention_days: int = 14  # what the backup timer keeps; the lifecycle backstops it
    noncurrent_days: int = 7  # a deleted or overwritten object is kept this long as a version
    # Protected: `pulumi destroy` refuses; unprotected: destroy empties and removes the bucket.
    protect: bool = True


class Backups(pulumi.ComponentResource):
    """The bucket, its guard rails, and the policy attached to each writer role."""

    def __init__(self, name: str, args: BackupsArgs, opts: ResourceOptions | None = None) -> None:
        super().__init__("adpulse:backups:Backups", name, None, opts)
        if args.retention_days < 1 or args.noncurrent_days < 1:
            raise ValueError("BackupsArgs: retention_days and noncurrent_days must be at least 1")
        child = ResourceOptions(parent=self)
        self.retention_days = args.retention_days
        self.expire_after_days = args.retention_days + BACKSTOP_DAYS
        self.bucket = aws.s3.Bucket(
            f"{name}-backups",
            bucket_prefix=bucket_prefix(args.name_prefix),
            force_destroy=not args.protect,
            opts=ResourceOptions(parent=self, protect=args.protect),
        )
        bucket = self.bucket.id
        on_bucket = ResourceOptions(parent=self.bucket)
        aws.s3.BucketOwnershipControls(
            f"{name}-backups-ownership",
            bucket=bucket,
            rule={"object_ownership": "BucketOwnerEnforced"},  # no ACLs at all
            opts=on_bucket,
        )
        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-backups-public-access",
            bucket=bucket,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=on_bucket,
        )
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-backups-versioning",
            bucket=bucket,
            versioning_configuration={"status": "Enabled"},
            opts=on_bucket,
        )
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-backups-encryption",
            bucket=bucket,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": args.kms_key_arn,
                    },
                    # One data key per bucket, not per object: far fewer KMS calls for the
                    # thousands of parts one BACKUP writes.
                    "bucket_key_enabled": True,
                }
            ],
            opts=on_bucket,
        )
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-backups-lifecycle",
            bucket=bucket,
            rules=[
                {
                    "id": "expire-old-backups",
                    "status": "Enabled",
                    "filter": {},  # every object: the bucket holds backups only
                    "expiration": {"days": self.expire_after_days},
                    "noncurrent_version_expiration": {"noncurrent_days": args.noncurrent_days},
                    "abort_incomplete_multipart_upload": {
                        "days_after_initiation": ABORT_UPLOADS_AFTER_DAYS
                    },
                }
            ],
            # S3 refuses a lifecycle on versions before versioning is on.
            opts=ResourceOptions(parent=self.bucket, depends_on=[self.versioning]),
        )
        aws.s3.BucketPolicy(
            f"{name}-backups-policy",
            bucket=bucket,
            policy=self.bucket.arn.apply(tls_only_policy),
            # Put after the public access block, which would otherwise race the policy.
            opts=ResourceOptions(parent=self.bucket, depends_on=[self.public_access_block]),
        )
        self.writer_policy = aws.iam.Policy(
            f"{name}-backups-writer",
            description="adpulse: write and read ClickHouse backups",
            policy=pulumi.Output.all(self.bucket.arn, args.kms_key_arn).apply(
                lambda v: writer_policy(v[0], v[1])
            ),
            opts=child,
        )
        for i, role in enumerate(args.writer_role_names, start=1):
            aws.iam.RolePolicyAttachment(
                f"{name}-backups-writer-{i}",
                role=role,
                policy_arn=self.writer_policy.arn,
                opts=child,
            )
        self.bucket_name = bucket  # an S3 bucket's id is its name
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket.arn})
