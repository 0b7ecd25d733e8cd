"""The backups bucket: private, versioned, encrypted with the stack's key, TLS only, expiring;
the ClickHouse role may write and read it, nobody else is given anything. The backup script:
as `admin` from a private client file, ON CLUSTER only with several shards, retention after
success only."""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pulumi
import pytest
from pulumi import Output

from adpulse.clickhouse.config import ConfigOptions
from adpulse.topology import Topology, three_replicas
from stacks.backups import BACKSTOP_DAYS, bucket_prefix, tls_only_policy, writer_policy
from stacks.cluster_shape import grid_topology
from stacks.config import StackConfig, StackConfigError, load_stack_config
from stacks.mocks import Mocks, Recorded
from stacks.node_backup import BACKUP, BackupPlan
from stacks.userdata import node_user_data
from tests.stacks.conftest import (
    CONFIG,
    SECRETS,
    of_type,
    pulumi_test,
    set_config,
)
from tests.stacks.test_userdata import files_of, make_boot, stub

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


# --- the backup script, run: stubbed AWS CLI and ClickHouse client, real bash -------------


class BackupRun:
    """adpulse-backup on the backup replica with `aws` and `clickhouse-client` stubbed: the
    client logs its arguments and environment and keeps a copy of the config file it was given,
    with that file's mode and its directory's mode, as they were while it ran."""

    def __init__(self, tmp_path: Path, password: str = "adm-Q3v8Zr6tW1yHx5") -> None:
        self.root = tmp_path
        self.password = password
        self.log = tmp_path / "calls.log"
        self.seen = tmp_path / "seen"
        self.seen.mkdir()
        self.run_dir = tmp_path / "run"
        self.run_dir.mkdir(mode=0o700)
        self.boot = make_boot("ch-1", BackupPlan(bucket="bk", region="us-east-1"))
        self.admin_arn = self.boot.secret_arns["clickhouse-admin-password"]

    def run(
        self, topology: Topology, listing: Sequence[str] = (), client_fails: bool = False
    ) -> subprocess.CompletedProcess[str]:
        bin_dir = self.root / "bin"
        bin_dir.mkdir(exist_ok=True)
        log, seen = self.log, self.seen
        stub(bin_dir, "clickhouse-client",
             f'echo "clickhouse-client $*" >>{log}\nenv >{seen}/env\n'
             'while [ $# -gt 0 ] && [ "$1" != --config-file ]; do shift; done\n'
             f'[ $# -gt 0 ] || exit {int(client_fails)}\n'
             f'cp "$2" {seen}/client.xml\nstat -c %a "$2" >{seen}/mode\n'
             f'stat -c %a "$(dirname "$2")" >{seen}/dir-mode\necho "$2" >{seen}/path\n'
             f"exit {int(client_fails)}\n")  # fmt: skip
        lines = "\\n".join(f"                           PRE {name}/" for name in listing)
        (self.root / "password").write_text(self.password)
        stub(bin_dir, "aws",
             f'echo "aws $*" >>{log}\n'
             f'if [ "$3" = s3 ] && [ "$4" = ls ]; then printf "{lines}\\n"; fi\n'
             f'if [ "$3" = secretsmanager ] && [ "$6" = {self.admin_arn} ]; then\n'
             f'  cat {self.root}/password; echo; fi\n')  # fmt: skip
        script = files_of(node_user_data(self.boot, topology))[BACKUP]
        return subprocess.run(
            ["bash", "-c", script],
            env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                 "RUNTIME_DIRECTORY": str(self.run_dir)},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def backup_query(self) -> str:
        return next(line for line in self.calls() if line.startswith("clickhouse-client"))


def _days_ago(days: int) -> str:
    """A backup folder name as the script makes it, `days` ago."""
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y%m%dT%H%M%SZ")


def test_backup_then_retention_deletes_only_old_backups_it_named(tmp_path: Path) -> None:
    old, recent = _days_ago(20), _days_ago(3)
    run = BackupRun(tmp_path)
    done = run.run(grid_topology(2, 2), [old, recent, "manual-keep"])
    assert done.returncode == 0, done.stderr
    # Two shards: ON CLUSTER backs up one replica of each.
    assert (
        "BACKUP DATABASE adpulse ON CLUSTER adpulse TO S3('https://bk.s3.us-east-1.amazonaws.com/clickhouse/"
        in run.backup_query()
    )
    removed = [line.split()[-1] for line in run.calls() if " s3 rm " in line]
    assert removed == [f"s3://bk/clickhouse/{old}/"]


def test_one_shard_backs_up_its_own_replica_without_on_cluster(tmp_path: Path) -> None:
    run = BackupRun(tmp_path)
    done = run.run(three_replicas())
    assert done.returncode == 0, done.stderr
    assert "BACKUP DATABASE adpulse TO S3('https://bk.s3" in run.backup_query()
    assert "ON CLUSTER" not in run.backup_query()


def test_a_failed_backup_deletes_nothing(tmp_path: Path) -> None:
    run = BackupRun(tmp_path)
    done = run.run(grid_topology(2, 2), [_days_ago(60)], client_fails=True)
    assert done.returncode != 0
    assert not any(" s3 " in line for line in run.calls()), "no listing, no deletion"


# ids: the test's name reaches the environment (PYTEST_CURRENT_TEST), the password must not.
@pytest.mark.parametrize(
    "password",
    ["adm-Q3v8Zr6tW1yHx5", "a&b<c>d\"e'f $(x) `y` ;z"],
    ids=["generated", "metacharacters"],
)
def test_the_backup_runs_as_admin_with_the_password_in_a_private_file(
    tmp_path: Path, password: str
) -> None:
    """Not as `default` (loopback only): as `admin`, from its secret, through a 0600 client
    config in a 0700 directory, never in an argument, the environment or the output; the file
    is gone once the run ends."""
    run = BackupRun(tmp_path, password)
    done = run.run(grid_topology(2, 2))
    assert done.returncode == 0, done.stderr
    client = ET.parse(run.seen / "client.xml").getroot()
    assert (client.findtext("user"), client.findtext("password")) == ("admin", password)
    assert (run.seen / "mode").read_text().strip() == "600"
    assert (run.seen / "dir-mode").read_text().strip() == "700"
    assert run.backup_query().startswith("clickhouse-client --config-file ")
    assert "--user" not in run.backup_query() and "--password" not in run.backup_query()
    assert [line for line in run.calls() if "get-secret-value" in line] == [
        f"aws --region us-east-1 secretsmanager get-secret-value --secret-id {run.admin_arn} "
        "--query SecretString --output text"
    ]
    shown = "\n".join([done.stdout, done.stderr, *run.calls(), (run.seen / "env").read_text()])
    assert password not in shown
    used = Path((run.seen / "path").read_text().strip())
    assert used.parent.parent == run.run_dir and not used.exists(), "removed after the run"
    assert list(run.run_dir.iterdir()) == []


def test_a_backup_host_that_cannot_log_in_over_loopback_is_refused() -> None:
    options = ConfigOptions(networks=("10.0.0.0/16",))
    with pytest.raises(ValueError, match=r"lacks 127\.0\.0\.1: the backup logs in as 'admin'"):
        node_user_data(
            make_boot("ch-1", BackupPlan(bucket="bk", region="us-east-1")),
            three_replicas(),
            options,
        )
