"""`adpulse schema status|migrate|unlock --stack`: what is refused before any host is reached, each
as one line. The runs on a real host are in tests/deploy/test_remote_admin.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

ROOT = Path(__file__).resolve().parents[2]
PROD = ROOT / "tests" / "deploy" / "fixtures" / "outputs-prod.json"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_an_outputs_file_of_another_stack_is_one_line_naming_both() -> None:
    code, out, err = run("schema", "migrate", "--stack", "nope", "--outputs", str(PROD))
    assert (code, out) == (1, "")
    assert err == (
        f"error: outputs file {PROD}: it is the outputs of stack 'prod', not 'nope'; write the "
        "stack's outputs with `pulumi stack output --json --show-secrets --stack nope > "
        f"{PROD}`\n"
    )


def test_without_outputs_or_the_pulumi_cli_the_error_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `pulumi` on it
    code, out, err = run("schema", "status", "--stack", "prod")
    assert (code, out, err.count("\n")) == (1, "", 1)
    assert err.startswith("error: the Pulumi CLI is not on PATH: install it")
    assert "or pass --outputs FILE" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--outputs", str(PROD)], "--outputs needs --stack NAME: it says how to reach a stack"),
        (
            ["--release", "0123456789ab"],
            "--release needs --stack NAME: it says how to reach a stack",
        ),
        (
            ["--stack", "prod", "--outputs", str(PROD), "--topology", "single"],
            "--topology is for local runs: with --stack, the stack's own settings apply",
        ),
        (
            ["--stack", "prod", "--outputs", str(PROD), "--discover", "us-east-1"],
            "give --outputs FILE or --discover REGION, not both",
        ),
        (
            ["--stack", "prod", "--outputs", str(PROD), "--bastion", "admin@jump:ssh"],
            "--bastion 'admin@jump:ssh' is not [USER@]HOST[:PORT], e.g. admin@203.0.113.7:22",
        ),
    ],
)
def test_options_that_do_not_go_together_are_refused_by_name(args: list[str], message: str) -> None:
    for command in (["schema", "status"], ["schema", "migrate", "--dry-run"]):
        assert run(*command, *args) == (1, "", f"error: {message}\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--ssh-key", "/nonexistent/key"],
            "--ssh-key needs --stack NAME: it says how to reach a stack",
        ),
        (
            ["--stack", "nope", "--outputs", str(PROD), "--yes"],
            f"outputs file {PROD}: it is the outputs of stack 'prod', not 'nope'; write the "
            "stack's outputs with `pulumi stack output --json --show-secrets --stack nope > "
            f"{PROD}`",
        ),
    ],
)
def test_unlock_on_a_stack_is_refused_by_name_before_reaching_it(
    args: list[str], message: str
) -> None:
    assert run("schema", "unlock", *args) == (1, "", f"error: {message}\n")


def test_the_local_dry_run_names_each_migration_and_where_it_resumes(tmp_path: Path) -> None:
    # A subprocess: the test process already holds a chDB path, and a process may hold one.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADPULSE_")}
    env |= {"ADPULSE_CLICKHOUSE_URL": f"chdb://{tmp_path}/chdb", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "cli", "schema", "migrate", "--dry-run", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout)[0]
    assert (first["version"], first["name"], first["from_statement"]) == (
        1,
        "0001_events_and_rollups.sql.j2",
        1,
    )
    assert first["statements"][0].startswith("CREATE")


def test_a_time_from_the_host_s_json_prints_as_a_local_one_does() -> None:
    from datetime import UTC, datetime

    from commands.schema import _when

    at = datetime(2024, 5, 1, 10, 0, 7, tzinfo=UTC)
    assert _when(str(at)) == _when(at) == "2024-05-01T10:00:07+00:00"  # JSON holds str(at)
    assert _when(None) == "-"
