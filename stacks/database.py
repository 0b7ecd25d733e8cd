"""RDS Postgres for campaign metadata; RDS owns the master password in Secrets Manager, and
the services log in as their own role, never as the master user."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random
from pulumi import ResourceOptions

from adpulse import names

PORT = 5432
# The master user owns the database and is for the migration step only: its password is RDS's
# (rotated by RDS in Secrets Manager), so a service holding it would break at each rotation and
# could drop every table.
MASTER_USER = "adpulse"
# The services' login (`postgres_url`), with the password the stack generates
# (stacks/secret_store.py, `postgres-app-password`). Pulumi creates no Postgres roles: the
# deploy's migration step logs in as MASTER_USER and creates this role with that password
# (CREATE ROLE ... LOGIN, granted the adpulse tables) before the services start.
APP_USER = "adpulse_app"


def postgres_url(
    host: str, port: int = PORT, user: str = APP_USER, db: str = names.DATABASE
) -> str:
    """`postgresql://user@host:5432/db?sslmode=require`; the password comes from the secret."""
    return f"postgresql://{user}@{host}:{port}/{db}?sslmode=require"


def _secret_arn(secrets: Sequence[aws.rds.outputs.InstanceMasterUserSecret] | None) -> str:
    """The ARN of the secret RDS keeps the master password in (known after creation)."""
    return (secrets[0].secret_arn or "") if secrets else ""


@dataclass
class DatabaseArgs:
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    name_prefix: str  # `adpulse-<stack>`: the instance and its final snapshot are named after it
    instance_class: pulumi.Input[str] = "db.t4g.medium"
    engine_version: pulumi.Input[str] = "16"
    multi_az: pulumi.Input[bool] = True
    storage_gb: pulumi.Input[int] = 50
    deletion_protection: pulumi.Input[bool] = True


class Database(pulumi.ComponentResource):
    """One encrypted, private instance. `url` is the services' login (APP_USER, no password);
    `master_secret_arn` is the secret RDS keeps the master login in, for the migration step."""

    def __init__(self, name: str, args: DatabaseArgs, opts: ResourceOptions | None = None) -> None:
        super().__init__("adpulse:database:Database", name, None, opts)
        child = ResourceOptions(parent=self)
        subnets = aws.rds.SubnetGroup(
            f"{name}-pg-subnets", subnet_ids=list(args.subnet_ids), opts=child
        )
        # Snapshot names are unique per account and region and outlive the instance: a suffix
        # drawn each time the stack creates the database lets it be destroyed, created and
        # destroyed again.
        suffix = pulumi_random.RandomId(f"{name}-pg-final-suffix", byte_length=4, opts=child)
        self.instance = aws.rds.Instance(
            f"{name}-pg",
            identifier_prefix=f"{args.name_prefix}-pg-",
            engine="postgres",
            engine_version=args.engine_version,
            instance_class=args.instance_class,
            allocated_storage=args.storage_gb,
            # Metadata grows slowly; autoscaling to 4x avoids a 3 a.m. full disk.
            max_allocated_storage=pulumi.Output.from_input(args.storage_gb).apply(lambda g: g * 4),
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            db_name=names.DATABASE,
            username=MASTER_USER,
            # RDS generates and rotates the password in Secrets Manager: it never passes
            # through Pulumi config, code or state.
            manage_master_user_password=True,
            master_user_secret_kms_key_id=args.kms_key_arn,
            # IAM auth tokens may log in besides passwords (a role granted rds_iam), so a login
            # without a stored password can be added without a restart; passwords keep working.
            iam_database_authentication_enabled=True,
            port=PORT,
            multi_az=args.multi_az,
            publicly_accessible=False,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[args.security_group_id],
            backup_retention_period=7,
            copy_tags_to_snapshot=True,
            deletion_protection=args.deletion_protection,
            skip_final_snapshot=False,
            final_snapshot_identifier=suffix.hex.apply(
                lambda hex_: f"{args.name_prefix}-pg-final-{hex_}"
            ),
            auto_minor_version_upgrade=True,
            opts=child,
        )
        self.address = self.instance.address
        self.url = self.address.apply(postgres_url)
        self.master_secret_arn = self.instance.master_user_secrets.apply(_secret_arn)
        self.register_outputs({"url": self.url, "master_secret_arn": self.master_secret_arn})
