"""The stack's KMS key, its Secrets Manager secrets, and the host role that may read them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random
from pulumi import ResourceOptions

# The credentials the stack keeps in Secrets Manager, with the length it generates when the
# operator sets no override. Letters and digits only: the values pass through users.xml, shell
# and URLs without escaping, and 32 of them carry ~190 bits. ElastiCache wants 16..128
# characters for the Redis token.
GENERATED_LENGTH = {
    "clickhouse-admin-password": 32,
    "clickhouse-ingest-password": 32,
    "clickhouse-api-password": 32,
    "clickhouse-cluster-secret": 48,
    "redis-auth-token": 64,
    # The services' Postgres login (stacks/database.py APP_USER), not the RDS master user's.
    "postgres-app-password": 32,
    # The key the dashboard's server sends to the API, which registers its hash at startup
    # (adpulse.metadata.api_keys.register): 43 letters and digits carry 256 bits, as many as
    # `adpulse apikey create` gives a key.
    "dashboard-api-key": 43,
}
# What a generated value starts with: an adpulse API key is `adp_` and URL-safe characters
# (adpulse.metadata.api_keys.KEY_PREFIX; the API refuses a dashboard key without it).
GENERATED_PREFIX = {"dashboard-api-key": "adp_"}
# Generated only, with no config override: nothing but the stack and the deploy's steps need
# to know them (the migration step sets the first on the adpulse_app role, stacks/database.py;
# the deploy gives the second to the API and the dashboard). The dashboard's key rotates by
# replacing its generator (`pulumi up --replace <urn of adpulse-dashboard-api-key-generated>`)
# and deploying: each API started with the new key revokes the old one.
STACK_ONLY_KEYS = ("postgres-app-password", "dashboard-api-key")
# The credentials an operator may set (`pulumi config set --secret`), one override each.
SECRET_KEYS = tuple(key for key in GENERATED_LENGTH if key not in STACK_ONLY_KEYS)
# Deleted secrets stay recoverable this long. Names carry a unique suffix (name_prefix), so a
# destroy followed by an up creates new names instead of colliding with the pending deletions.
RECOVERY_WINDOW_DAYS = 7
_SSM_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
_CW_AGENT_POLICY = "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"


@dataclass
class SecretsArgs:
    # `adpulse-<stack>`: the alias and the secrets' names start with it.
    name_prefix: str
    # Keyed by SECRET_KEYS (more keys may be added, with a value). A value comes from
    # `pulumi config set --secret`; None generates one with pulumi-random, kept in the state.
    # STACK_ONLY_KEYS are generated and stored besides these.
    overrides: Mapping[str, pulumi.Input[str] | None]


def key_policy(account: str, partition: str, region: str, dns_suffix: str) -> str:
    """The account administers the key (so IAM policies grant its use, as for the host roles);
    CloudWatch Logs may encrypt this account's log groups in this region with it; CloudWatch
    alarms may publish to the SNS topic it encrypts."""
    logs = f"arn:{partition}:logs:{region}:{account}:log-group:*"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministersTheKey",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchLogsEncryptsItsLogGroups",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{region}.{dns_suffix}"},
                    "Action": [
                        "kms:Encrypt*",
                        "kms:Decrypt*",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:Describe*",
                    ],
                    "Resource": "*",
                    "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": logs}},
                },
                {
                    # A publisher to an encrypted topic needs these on the topic's key; CloudWatch
                    # alarms are published by the service itself, so IAM cannot grant them.
                    "Sid": "CloudWatchAlarmsPublishToTheEncryptedTopic",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                },
            ],
        },
        sort_keys=True,
    )


class Secrets(pulumi.ComponentResource):
    """One customer-managed KMS key for every store, and one secret per credential.

    `values` holds every credential as a secret Output (the override or the generated one), for
    the resources that need the value itself (the Redis AUTH token); `arns` is what hosts read.
    """

    def __init__(self, name: str, args: SecretsArgs, opts: ResourceOptions | None = None) -> None:
        missing = sorted(set(SECRET_KEYS) - set(args.overrides))
        if missing:
            raise ValueError(f"SecretsArgs.overrides lacks {', '.join(missing)}")
        for key, override in args.overrides.items():
            if override is None and key not in GENERATED_LENGTH:
                raise ValueError(f"SecretsArgs.overrides[{key!r}] is None and cannot be generated")
        super().__init__("adpulse:secrets:Secrets", name, None, opts)
        child = ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke)
        region = aws.get_region_output(opts=invoke).region
        # A key of our own (not aws/ebs, aws/rds...) so access to data at rest can be revoked
        # and audited in one place; yearly rotation keeps old ciphertexts readable.
        # Kept by `pulumi destroy` (retain_on_delete: dropped from the state, not deleted): the
        # database's final snapshot, which every stack keeps (stacks/database.py), is encrypted
        # with it and is unreadable once the key is gone, so destroying the key with the stack
        # would silently make that snapshot worthless 30 days later. Whoever deletes the
        # snapshot schedules the key's deletion by hand (stacks/README.md, Tearing down).
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.name_prefix} data at rest: EBS, MSK, ElastiCache, RDS, Secrets "
            "Manager, CloudWatch Logs",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(
                account, partition.partition, region, partition.dns_suffix
            ).apply(lambda v: key_policy(*v)),
            opts=ResourceOptions(parent=self, retain_on_delete=True),
        )
        aws.kms.Alias(
            f"{name}-key-alias",
            name=f"alias/{args.name_prefix}",
            target_key_id=self.key.id,
            opts=child,
        )
        self.values: dict[str, pulumi.Output[str]] = {}
        self.arns: dict[str, pulumi.Output[str]] = {}
        wanted = {**dict.fromkeys(STACK_ONLY_KEYS), **args.overrides}
        for key, override in wanted.items():
            value = self._value(name, key, override)
            secret = aws.secretsmanager.Secret(
                f"{name}-{key}",
                name_prefix=f"{args.name_prefix}/{key}-",
                kms_key_id=self.key.arn,
                recovery_window_in_days=RECOVERY_WINDOW_DAYS,
                opts=child,
            )
            aws.secretsmanager.SecretVersion(
                f"{name}-{key}-version",
                secret_id=secret.id,
                secret_string=value,
                opts=ResourceOptions(parent=secret),
            )
            self.values[key] = value
            self.arns[key] = secret.arn
        self.register_outputs({"key_arn": self.key.arn, "secret_arns": self.arns})

    def _value(self, name: str, key: str, override: pulumi.Input[str] | None) -> pulumi.Output[str]:
        """The override, or a generated value; secret either way."""
        if override is not None:
            return pulumi.Output.secret(override)
        generated = pulumi_random.RandomPassword(
            f"{name}-{key}-generated",
            length=GENERATED_LENGTH[key],
            special=False,
            opts=ResourceOptions(parent=self, additional_secret_outputs=["result"]),
        )
        return pulumi.Output.secret(
            pulumi.Output.concat(GENERATED_PREFIX.get(key, ""), generated.result)
        )


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
