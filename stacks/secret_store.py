"""The stack's KMS key, its Secrets Manager secrets, and the host role that may read them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from pulumi import ResourceOptions

# The hosts render ClickHouse users from these; the names are what `aws secretsmanager
# get-secret-value --secret-id adpulse/<stack>/<key>` takes.
SECRET_KEYS = (
    "clickhouse-admin-password",
    "clickhouse-ingest-password",
    "clickhouse-api-password",
    "clickhouse-cluster-secret",
    "redis-auth-token",
)
_SSM_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
_CW_AGENT_POLICY = "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"


@dataclass
class SecretsArgs:
    # Keyed by SECRET_KEYS; values come from `pulumi config set --secret`, never from code.
    values: Mapping[str, pulumi.Input[str]]
    prefix: pulumi.Input[str]


class Secrets(pulumi.ComponentResource):
    """One customer-managed KMS key for every store, and one secret per credential."""

    def __init__(self, name: str, args: SecretsArgs, opts: ResourceOptions | None = None) -> None:
        super().__init__("adpulse:secrets:Secrets", name, None, opts)
        missing = sorted(set(SECRET_KEYS) - set(args.values))
        if missing:
            raise ValueError(f"SecretsArgs.values lacks {', '.join(missing)}")
        child = ResourceOptions(parent=self)
        # A key of our own (not aws/ebs, aws/rds...) so access to data at rest can be revoked
        # and audited in one place; yearly rotation keeps old ciphertexts readable.
        self.key = aws.kms.Key(
            f"{name}-key",
            description="adpulse data at rest: EBS, MSK, ElastiCache, RDS, Secrets Manager",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-key-alias", name=f"alias/{name}", target_key_id=self.key.id, opts=child
        )
        self.arns: dict[str, pulumi.Output[str]] = {}
        for key in SECRET_KEYS:
            secret = aws.secretsmanager.Secret(
                f"{name}-{key}",
                name=pulumi.Output.concat(args.prefix, "/", key),
                kms_key_id=self.key.arn,
                recovery_window_in_days=7,
                opts=child,
            )
            aws.secretsmanager.SecretVersion(
                f"{name}-{key}-version",
                secret_id=secret.id,
                secret_string=pulumi.Output.secret(args.values[key]),
                opts=ResourceOptions(parent=secret),
            )
            self.arns[key] = secret.arn
        self.register_outputs({"key_arn": self.key.arn, "secret_arns": self.arns})


@dataclass
class HostRoleArgs:
    secret_arns: Sequence[pulumi.Input[str]]
    kms_key_arn: pulumi.Input[str]


def _read_policy(arns: list[str], key_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": arns},
                {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn},
            ],
        }
    )


class HostRole(pulumi.ComponentResource):
    """An EC2 instance profile: SSM Session Manager, the CloudWatch agent, and read access to
    exactly the secrets the host needs (so credentials never sit in user data or state files)."""

    def __init__(self, name: str, args: HostRoleArgs, opts: ResourceOptions | None = None) -> None:
        super().__init__("adpulse:secrets:HostRole", name, None, opts)
        child = ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "ec2.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            opts=child,
        )
        for short, arn in (("ssm", _SSM_POLICY), ("cloudwatch", _CW_AGENT_POLICY)):
            aws.iam.RolePolicyAttachment(
                f"{name}-{short}", role=role.name, policy_arn=arn, opts=child
            )
        aws.iam.RolePolicy(
            f"{name}-secrets",
            role=role.id,
            policy=pulumi.Output.all(pulumi.Output.all(*args.secret_arns), args.kms_key_arn).apply(
                lambda v: _read_policy(list(v[0]), v[1])
            ),
            opts=child,
        )
        self.role = role
        self.profile = aws.iam.InstanceProfile(f"{name}-profile", role=role.name, opts=child)
        self.register_outputs({"role_arn": role.arn, "profile_name": self.profile.name})
