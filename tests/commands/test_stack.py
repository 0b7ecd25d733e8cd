"""`adpulse stack check`: the command end to end, on stack files derived from Pulumi.prod.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from cli import app
from stacks.inventory import ROOT, placeholder

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0123abcd-0123-4567-89ab-0123456789ab"


def stack_file(folder: Path, **changes: Any) -> Path:
    """Pulumi.prod.yaml with `changes` to its config, written into `folder`."""
    data = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    data["config"].update(changes)
    path = folder / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_missing_stack_file_is_one_line_naming_it_and_the_fix(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["stack", "check", "--stack", "staging", "--config-dir", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"error: no stack file {tmp_path}/Pulumi.staging.yaml: create it with "
        "`pulumi stack init staging` and `pulumi config set` (stacks/README.md); "
        "Pulumi.dev.yaml and Pulumi.prod.yaml are the committed examples"
    ]


def test_a_compliant_stack_passes_every_policy_and_checkov(tmp_path: Path) -> None:
    secure = {"secure": "v1:AAAAAAAAAAAAAAAA:ciphertext-only-the-pulumi-cli-can-decrypt"}
    stack_file(
        tmp_path, **{"adpulse:certificateArn": CERTIFICATE, "adpulse:redisAuthToken": secure}
    )
    plan = tmp_path / "plan.json"
    args = ["stack", "check", "--config-dir", str(tmp_path), "--plan", str(plan), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert len(report["policies"]) >= 25
    assert {p["status"] for p in report["policies"]} == {"pass"}
    checkov = report["checkov"]
    assert checkov["failed"] == [] and checkov["stale_skips"] == []
    assert checkov["passed"] > checkov["resource_count"] > 100
    assert {s["check_id"] for s in checkov["suppressed"]} <= set(
        yaml.safe_load((ROOT / "stacks" / "checkov-skips.yaml").read_text())
    )
    assert any(
        "replaced by fake placeholders" in n and "redisAuthToken" in n for n in report["notes"]
    )
    fake = placeholder("adpulse:redisAuthToken")
    assert fake not in result.stdout and fake not in plan.read_text()
    [rds] = [r for r in report["inventory"] if r["type"] == "aws:rds/instance:Instance"]
    assert rds["settings"]["multiAz"] is True and rds["settings"]["storageEncrypted"] is True


def test_a_violation_exits_1_and_names_the_policy_and_resource(tmp_path: Path) -> None:
    stack_file(
        tmp_path,
        **{"adpulse:certificateArn": CERTIFICATE, "adpulse:postgresMultiAz": "false"},
    )
    args = ["stack", "check", "--config-dir", str(tmp_path), "--no-checkov"]
    args += ["--plan", str(tmp_path / "plan.json")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    failing = [line.split()[1] for line in lines if line.startswith("  FAIL ")]
    assert failing == ["rds-multi-az"]
    assert "       adpulse-pg: multiAz is not true" in lines
    assert lines[-1] == "result: FAIL (1 policies failed, 0 unsuppressed checkov failures)"
    assert "checkov: not run (--no-checkov)" in lines


def test_a_config_error_in_the_program_is_one_line_naming_the_key(tmp_path: Path) -> None:
    stack_file(tmp_path, **{"adpulse:clickhouseVolumeIops": "10"})
    args = ["stack", "check", "--config-dir", str(tmp_path), "--no-checkov"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.startswith(
        "error: the stack program failed under mocks: config adpulse:clickhouseVolumeIops is 10"
    )
