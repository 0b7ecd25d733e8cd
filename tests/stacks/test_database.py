"""Postgres: private, encrypted, its master password owned by RDS in Secrets Manager, and the
services logging in as their own role."""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from pulumi import Output

from stacks.database import APP_USER, MASTER_USER, postgres_url
from tests.stacks.conftest import Mocks, of_type, pulumi_test


@pulumi_test
def test_private_encrypted_multi_az_with_managed_password(program: ModuleType) -> Output[None]:
    db = program.database.instance

    def check(values: list[Any]) -> None:
        public, encrypted, key, key_arn, managed, multi_az, cls, protect, sgs, pg_sg, iam = values
        assert public is False
        assert encrypted is True and key == key_arn
        assert managed is True
        assert iam is True, "CKV_AWS_161: IAM auth tokens may log in"
        assert multi_az is True and cls == "db.t4g.medium" and protect is True
        assert sgs == [pg_sg]

    return Output.all(
        db.publicly_accessible,
        db.storage_encrypted,
        db.kms_key_id,
        program.secrets.key.arn,
        db.manage_master_user_password,
        db.multi_az,
        db.instance_class,
        db.deletion_protection,
        db.vpc_security_group_ids,
        program.network.security_groups["postgres"].id,
        db.iam_database_authentication_enabled,
    ).apply(check)


def test_no_password_is_passed_to_rds(mocks: Mocks) -> None:
    (db,) = of_type(mocks, "aws:rds/instance:Instance")
    assert "password" not in db.inputs and "passwordWo" not in db.inputs
    (subnets,) = of_type(mocks, "aws:rds/subnetGroup:SubnetGroup")
    assert subnets.inputs["subnetIds"] == [f"adpulse-data-{n}-subnet-id" for n in (1, 2, 3)]


def test_url_requires_tls_names_the_app_login_and_has_no_password() -> None:
    url = postgres_url("db.example.rds.amazonaws.com")
    assert url == (
        "postgresql://adpulse_app@db.example.rds.amazonaws.com:5432/adpulse?sslmode=require"
    )
    assert APP_USER != MASTER_USER


@pulumi_test
def test_the_url_is_the_app_login_and_the_master_stays_in_rds_secret(
    program: ModuleType,
) -> Output[None]:
    """The URL names adpulse_app; the master login stays in the secret RDS keeps."""
    db = program.database

    def check(values: list[Any]) -> None:
        master, url, master_secret = values
        assert master == MASTER_USER
        assert urlsplit(url).username == APP_USER
        assert master_secret.endswith(":secret:rds!db-1"), "the secret RDS keeps"

    return Output.all(db.instance.username, db.url, db.master_secret_arn).apply(check)


def test_names_come_from_the_stack_with_a_fresh_snapshot_suffix(mocks: Mocks) -> None:
    """Two stacks share an account, and destroy, up, destroy again works: the final snapshot's
    name carries the stack and a suffix generated with the instance."""
    (db,) = of_type(mocks, "aws:rds/instance:Instance")
    (suffix,) = [r for r in of_type(mocks, "random:index/randomId:RandomId") if "pg" in r.name]
    assert db.inputs["identifierPrefix"] == "adpulse-test-pg-"
    snapshot = db.inputs["finalSnapshotIdentifier"]
    assert re.fullmatch(r"adpulse-test-pg-final-[0-9a-f]{8}", snapshot), snapshot
    assert snapshot.endswith(mocks_hex(mocks, suffix.name))
    assert db.inputs["skipFinalSnapshot"] is False


def mocks_hex(mocks: Mocks, name: str) -> str:
    (recorded,) = [r for r in mocks.resources if r.name == name]
    return str(recorded.outputs["hex"])
