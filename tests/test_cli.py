"""The `adpulse` command as a person and a script use it: help, output, errors, exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

ROOT = Path(__file__).resolve().parents[1]
HEAVY = (
    "chdb",
    "confluent_kafka",
    "pulumi",
    "pulumi_aws",
    "fastapi",
    "sqlalchemy",
    "pyarrow",
    "boto3",
    "yaml",
)


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["cost", "report", "--help"],
        ["stack", "--help"],
        ["deploy", "trust", "--help"],
        ["schema", "unlock", "--help"],
    ],
)
def test_help_imports_nothing_heavy(argv: list[str]) -> None:
    """`adpulse --help` must stay fast: the heavy libraries load only inside commands."""
    code = (
        "import sys, cli; from typer.testing import CliRunner; "
        f"assert CliRunner().invoke(cli.app, {argv!r}).exit_code == 0; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_help_teaches_where_to_start() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "adpulse up" in result.output
    for command in ("up", "schema", "config", "seed", "kafka", "generate", "consume"):
        assert command in result.output


def run_cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # A subprocess: the test process already holds a chDB path, and a process may hold one.
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def cli_env(tmp_path: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("ADPULSE_")}
    env["ADPULSE_CLICKHOUSE_URL"] = f"chdb://{tmp_path}/chdb"
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_schema_migrate_dry_run_status_and_json(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    dry = run_cli("schema", "migrate", "--dry-run", cwd=tmp_path, env=env)
    assert dry.returncode == 0, dry.stderr
    assert "CREATE TABLE IF NOT EXISTS adpulse.events" in dry.stdout
    assert "-- 0001_events_and_rollups.sql.j2 (from statement 1)" in dry.stdout

    applied = run_cli("schema", "migrate", "--json", cwd=tmp_path, env=env)
    assert applied.returncode == 0, applied.stderr
    versions = json.loads(applied.stdout)["applied"]
    assert versions[:2] == [1, 2]

    again = run_cli("schema", "migrate", cwd=tmp_path, env=env)
    assert again.stdout.strip() == "nothing to apply: schema is up to date"

    status = run_cli("schema", "status", "--json", cwd=tmp_path, env=env)
    rows = json.loads(status.stdout)
    assert [r["state"] for r in rows] == ["applied"] * len(versions)


def test_bad_setting_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    env = cli_env(tmp_path) | {"ADPULSE_BATCH_INTERVAL_S": "soon"}
    result = run_cli("schema", "status", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: invalid settings: ADPULSE_BATCH_INTERVAL_S")


def test_bad_topology_file_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "topo.toml"
    bad.write_text('cluster = "c"\nshards = [["a", "a"]]\nkeeper = ["a"]\n')
    result = run_cli("schema", "migrate", "--dry-run", "--topology", str(bad), cwd=tmp_path,
                     env=cli_env(tmp_path))  # fmt: skip
    assert result.returncode == 1
    assert "host(s) a appear more than once" in result.stderr


@pytest.mark.parametrize(
    ("command", "role"),
    [
        (("schema", "status"), "admin"),
        (("seed", "--events", "10"), "admin"),
        (("consume",), "ingest"),
    ],
)
def test_each_command_logs_in_as_its_role(
    native_port: int, tmp_path: Path, command: tuple[str, ...], role: str
) -> None:
    variable = f"ADPULSE_CLICKHOUSE_{role.upper()}_PASSWORD"
    env = cli_env(tmp_path) | {
        "ADPULSE_CLICKHOUSE_URL": f"clickhouse://127.0.0.1:{native_port}/default",
        variable: "not-the-right-password",
        "ADPULSE_METRICS_PORT": "0",
    }
    result = run_cli(*command, cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert f"refused the {role} role's login as user '{role}' (wrong password" in result.stderr
    assert f"check {variable}:" in result.stderr
    assert "not-the-right-password" not in result.stderr


def test_up_refuses_a_server_url(tmp_path: Path) -> None:
    env = cli_env(tmp_path) | {"ADPULSE_CLICKHOUSE_URL": "clickhouse://u@db:9000/x"}
    result = run_cli("up", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "`adpulse up` runs the local stack on the embedded engine" in result.stderr


def test_topics_apply_reports_json_and_mismatch_exit_code(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = cli_env(tmp_path) | {
        "ADPULSE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "ADPULSE_EVENTS_TOPIC": f"cli-{tmp_path.name}",
        "ADPULSE_DLQ_TOPIC": f"cli-dlq-{tmp_path.name}",
        "ADPULSE_TOPIC_PARTITIONS": "2",
    }
    first = run_cli("kafka", "topics", "apply", "--json", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert [r["action"] for r in json.loads(first.stdout)] == ["created", "created"]

    env["ADPULSE_TOPIC_PARTITIONS"] = "5"
    changed = run_cli("kafka", "topics", "apply", cwd=tmp_path, env=env)
    assert changed.returncode == 1
    assert "partitions: broker has 2, settings want 5" in changed.stdout


# What a migrator that crashed holding the lock leaves behind: the lock, taken and never let go.
CRASHED_MIGRATOR = """
from adpulse.clickhouse.migrate import MigrationLock
from adpulse.clickhouse.roles import connect_as
from adpulse.settings import get_settings

client = connect_as(get_settings(), "admin")
client.command(f"CREATE DATABASE IF NOT EXISTS {client.database}")
print(MigrationLock(client, client.database).__enter__().owner)
"""


def test_schema_unlock_removes_a_stale_lock_and_says_whose(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHED_MIGRATOR], cwd=tmp_path, env=env, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    owner = crashed.stdout.strip()
    held = run_cli("schema", "migrate", cwd=tmp_path, env=env)
    assert held.returncode == 1
    assert f"another migration holds the lock (held by {owner} since " in held.stderr

    refused = CliRunner().invoke(app, ["schema", "unlock"], input="n\n")  # asked before login
    assert (refused.exit_code, refused.stdout) == (
        1,
        "Is no other `adpulse schema migrate` running? [y/N]: n\n",
    )
    removed = run_cli("schema", "unlock", "--yes", cwd=tmp_path, env=env)
    assert removed.returncode == 0, removed.stderr
    assert re.fullmatch(
        rf"lock removed \(held by {re.escape(owner)} since [0-9T:+-]+\)\n", removed.stdout
    )
    again = run_cli("schema", "unlock", "--yes", "--json", cwd=tmp_path, env=env)
    assert (again.returncode, again.stderr) == (0, "")
    assert json.loads(again.stdout) == {"removed": False, "holder": None}
    assert run_cli("schema", "migrate", "--json", cwd=tmp_path, env=env).returncode == 0
