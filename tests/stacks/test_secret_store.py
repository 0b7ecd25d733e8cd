"""The stack's key and secrets: generated unless overridden, always secret, named per stack so a
second stack or a destroy-then-up never meets an old name."""

from __future__ import annotations

import json

import pytest

from adpulse.metadata import api_keys
from stacks.inventory import Inventory
from stacks.policy import POLICIES, judge
from stacks.secret_store import (
    GENERATED_LENGTH,
    GENERATED_PREFIX,
    RECOVERY_WINDOW_DAYS,
    SECRET_KEYS,
    STACK_ONLY_KEYS,
    Secrets,
    SecretsArgs,
    key_policy,
)
from tests.stacks.conftest import SECRETS, Mocks, of_type, secret_value

SECRET = "aws:secretsmanager/secret:Secret"
APP_PASSWORD = "postgres-app-password"
DASHBOARD_KEY = "dashboard-api-key"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
PASSWORD = "random:index/randomPassword:RandomPassword"


def test_the_key_policy_lets_the_account_administer_logs_encrypt_and_alarms_publish() -> None:
    policy = json.loads(key_policy("111122223333", "aws", "eu-west-1", "amazonaws.com"))
    admin, logs, alarms = policy["Statement"]
    assert admin["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    assert admin["Action"] == "kms:*"
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert "kms:GenerateDataKey*" in logs["Action"] and "kms:*" not in logs["Action"]
    assert logs["Condition"]["ArnLike"] == {
        "kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:eu-west-1:111122223333:log-group:*"
    }
    # Only what publishing to the encrypted alarms topic needs, from this account's alarms only.
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sorted(alarms["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert alarms["Condition"] == {"StringEquals": {"aws:SourceAccount": "111122223333"}}


def test_the_key_and_its_alias_are_the_stacks(mocks: Mocks) -> None:
    (key,) = of_type(mocks, "aws:kms/key:Key")
    (alias,) = of_type(mocks, "aws:kms/alias:Alias")
    assert alias.inputs["name"] == "alias/adpulse-test"
    assert alias.inputs["targetKeyId"] == key.id
    assert key.inputs["enableKeyRotation"] is True
    assert json.loads(key.inputs["policy"]) == json.loads(
        key_policy("123456789012", "aws", "us-east-1", "amazonaws.com")
    )


def test_destroy_keeps_the_key_that_the_final_snapshot_needs(mocks: Mocks) -> None:
    """The database keeps a final snapshot encrypted with the stack's key; a destroy that
    deleted the key would leave that snapshot unreadable."""
    (db,) = of_type(mocks, "aws:rds/instance:Instance")
    (key,) = of_type(mocks, "aws:kms/key:Key")
    assert db.inputs["skipFinalSnapshot"] is False
    assert db.inputs["kmsKeyId"] == f"arn:aws:kms:us-east-1:123456789012:{key.id}"
    assert key.options.get("retainOnDelete") is True, "pulumi destroy would delete the key"
    # The alias goes with the stack, so a later `pulumi up` can create it again.
    (alias,) = of_type(mocks, "aws:kms/alias:Alias")
    assert not alias.options.get("retainOnDelete")


def test_each_secret_has_a_per_stack_prefix_a_unique_suffix_and_a_recovery_window(
    mocks: Mocks,
) -> None:
    ours = {s.name.removeprefix("adpulse-"): s for s in of_type(mocks, SECRET)}
    for key in (*SECRET_KEYS, *STACK_ONLY_KEYS):
        secret = ours[key]
        assert secret.inputs["namePrefix"] == f"adpulse-test/{key}-"
        assert "name" not in secret.inputs, "a fixed name collides with its pending deletion"
        assert secret.inputs["recoveryWindowInDays"] == RECOVERY_WINDOW_DAYS
        assert secret.inputs["kmsKeyId"].endswith("adpulse-key-key-id")


def test_overrides_are_stored_marked_secret_and_nothing_is_generated_for_them(
    mocks: Mocks,
) -> None:
    """The session's config sets every override; the stack-only secrets have none."""
    overridden = set(SECRET_KEYS)
    assert not overridden & {APP_PASSWORD, DASHBOARD_KEY}
    assert {APP_PASSWORD, DASHBOARD_KEY} <= set(STACK_ONLY_KEYS)
    stored = {
        secret_value(v.inputs["secretString"])
        for v in of_type(mocks, VERSION)
        if v.name.removesuffix("-version").removeprefix("adpulse-") in overridden
    }
    assert stored == set(SECRETS.values())
    generated = {p.name for p in of_type(mocks, PASSWORD)}
    assert not {f"adpulse-{key}-generated" for key in overridden} & generated
    assert f"adpulse-{APP_PASSWORD}-generated" in generated


def test_the_postgres_app_password_is_generated_and_only_in_its_secret(mocks: Mocks) -> None:
    """The adpulse_app role's password: generated, URL-safe, stored marked secret."""
    (password,) = [p for p in of_type(mocks, PASSWORD) if APP_PASSWORD in p.name]
    assert password.inputs == {"length": GENERATED_LENGTH[APP_PASSWORD], "special": False}
    (version,) = [v for v in of_type(mocks, VERSION) if v.name == f"adpulse-{APP_PASSWORD}-version"]
    assert secret_value(version.inputs["secretString"]) == password.outputs["result"]
    assert str(password.outputs["result"]).isalnum()


def test_the_dashboard_key_is_generated_as_an_adpulse_api_key(mocks: Mocks) -> None:
    """What the API registers and `adpulse apikey create` would make: `adp_` and 256 bits of
    letters and digits, stored marked secret in its own vault entry, and nowhere else."""
    assert GENERATED_PREFIX == {DASHBOARD_KEY: api_keys.KEY_PREFIX}
    (password,) = [p for p in of_type(mocks, PASSWORD) if DASHBOARD_KEY in p.name]
    assert password.inputs == {"length": 43, "special": False}
    (version,) = [
        v for v in of_type(mocks, VERSION) if v.name == f"adpulse-{DASHBOARD_KEY}-version"
    ]
    key = secret_value(version.inputs["secretString"])
    assert key == api_keys.KEY_PREFIX + password.outputs["result"]
    assert api_keys.is_well_formed(key)
    holders = [
        (r.name, name)
        for r in mocks.resources
        for name, value in r.inputs.items()
        if password.outputs["result"] in json.dumps(value, default=str)
    ]
    assert holders == [(version.name, "secretString")]


def test_the_dashboard_key_reaches_the_app_hosts_by_arn_only(prod_inventory: Inventory) -> None:
    """No value in user data, tags or outputs (the policies search for it: it is a secret of
    the program); the ARN is exported and readable by the app hosts' role alone."""
    (secret,) = [s for s in prod_inventory.of_type(SECRET) if s.name == f"adpulse-{DASHBOARD_KEY}"]
    (version,) = [
        v for v in prod_inventory.of_type(VERSION) if v.name == f"adpulse-{DASHBOARD_KEY}-version"
    ]
    key = secret_value(version.inputs["secretString"])
    assert key in prod_inventory.secret_values
    checks = [p for p in POLICIES if p.id in ("inputs-no-plain-secret", "outputs-no-plain-secret")]
    assert [(v.policy.id, v.findings) for v in judge(prod_inventory, checks)] == [
        (p.id, ()) for p in checks
    ]
    exports = {e.name: e.value for e in prod_inventory.exports}
    arn = secret.outputs["arn"]
    assert exports["dashboard_api_key_secret_arn"] == arn
    assert exports["clickhouse_secret_arns"][DASHBOARD_KEY] == arn
    readers = {
        policy.name: json.loads(policy.inputs["policy"])["Statement"][0]["Resource"]
        for policy in prod_inventory.of_type("aws:iam/rolePolicy:RolePolicy")
        if policy.name.endswith("-secrets")
    }
    assert arn in readers["adpulse-app-secrets"]
    assert arn not in readers["adpulse-clickhouse-secrets"]


def _generated(inventory: Inventory) -> dict[str, str]:
    return {
        r.name.removeprefix("adpulse-").removesuffix("-generated"): r.outputs["result"]
        for r in inventory.of_type(PASSWORD)
        if r.name.endswith("-generated")
    }


def test_without_overrides_every_secret_is_generated_and_stays_secret(
    dev_inventory: Inventory,
) -> None:
    """Pulumi.dev.yaml sets no secret: the stack generates them all."""
    generated = _generated(dev_inventory)
    assert set(generated) == set(SECRET_KEYS) | set(STACK_ONLY_KEYS)
    for password in dev_inventory.of_type(PASSWORD):
        key = password.name.removeprefix("adpulse-").removesuffix("-generated")
        if key in GENERATED_LENGTH:
            assert password.settings == {"length": GENERATED_LENGTH[key], "special": False}
    versions = {v.name.removeprefix("adpulse-"): v for v in dev_inventory.of_type(VERSION)}
    for key, value in generated.items():
        stored = secret_value(versions[f"{key}-version"].inputs["secretString"])
        assert stored == GENERATED_PREFIX.get(key, "") + value
    (redis,) = dev_inventory.of_type("aws:elasticache/replicationGroup:ReplicationGroup")
    assert secret_value(redis.inputs["authToken"]) == generated["redis-auth-token"]
    # What the policies search every input and output for: each value as it is stored.
    in_vault = {GENERATED_PREFIX.get(key, "") + value for key, value in generated.items()}
    assert in_vault <= set(dev_inventory.secret_values)


def test_no_generated_secret_reaches_a_plain_export(dev_inventory: Inventory) -> None:
    values = set(_generated(dev_inventory).values())
    for export in dev_inventory.exports:
        text = json.dumps(export.value, default=str)
        leaked = [v for v in values if v in text]
        assert export.secret or not leaked, f"export {export.name} holds a secret in plain"


def test_secrets_refuse_a_missing_key_or_an_ungeneratable_one() -> None:
    with pytest.raises(ValueError, match="lacks clickhouse-admin-password"):
        Secrets("x", SecretsArgs(name_prefix="adpulse-test", overrides={}))
    overrides: dict[str, str | None] = {key: "value-long-enough" for key in SECRET_KEYS}
    with pytest.raises(ValueError, match="'tls-key'] is None and cannot be generated"):
        Secrets("y", SecretsArgs("adpulse-test", {**overrides, "tls-key": None}))
