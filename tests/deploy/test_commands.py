"""`adpulse deploy trust | inventory` end to end: the outputs file in, real hosts' keys out; and
what `adpulse deploy | rollback | status` hand to `deploy.run` (their runs on a host are in
test_deploy_command.py)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app
from deploy.ssh import Target, connect
from tests.support.hosts import Host

FIXTURE = Path(__file__).parent / "fixtures" / "outputs-prod.json"


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def outputs_on(hosts: list[Host], folder: Path) -> Path:
    """The prod outputs fixture with app-1, app-2 and ch-1 at the test hosts' addresses."""
    doc: dict[str, Any] = json.loads(FIXTURE.read_text())
    by_name = {"app-1": hosts[0].ip, "app-2": hosts[1].ip, "ch-1": hosts[2].ip}
    for key in ("app_hosts", "clickhouse_hosts"):
        for entry in doc[key]:
            entry["private_ip"] = by_name.get(entry["name"], entry["private_ip"])
    path = folder / "outputs.json"
    path.write_text(json.dumps(doc))
    return path


def test_inventory_lists_hosts_and_endpoints_from_the_outputs_file() -> None:
    code, out, _ = run(
        "deploy", "inventory", "--stack", "prod", "--outputs", str(FIXTURE), "--json"
    )
    assert code == 0
    doc = json.loads(out)
    assert [h["name"] for h in doc["hosts"]] == ["app-1", "app-2", "ch-1", "ch-2", "ch-3"]
    assert doc["endpoints"]["postgres_url"].startswith("postgresql://adpulse_app@")
    assert "secret" not in out.lower().replace("secret_arn", "")


def test_a_missing_outputs_file_is_one_line_with_the_command_that_writes_it(
    tmp_path: Path,
) -> None:
    code, _, err = run(
        "deploy", "inventory", "--stack", "prod", "--outputs", str(tmp_path / "nope.json")
    )
    assert code == 1 and err.count("\n") == 1
    assert "pulumi stack output --json --show-secrets --stack prod" in err


def test_trust_prints_fingerprints_and_records_only_on_yes(
    test_hosts: list[Host], tmp_path: Path
) -> None:
    outputs = outputs_on(test_hosts, tmp_path)
    picks = ["--host", "app-1", "--host", "app-2", "--host", "ch-1"]
    base = (
        "deploy",
        "trust",
        "--stack",
        "prod",
        "--outputs",
        str(outputs),
        "--ssh-user",
        "root",
        "--state-dir",
        str(tmp_path / "state"),
        *picks,
    )
    code, out, _ = run(*base, stdin="n\n")
    assert code == 1 and "nothing recorded" in out
    assert not (tmp_path / "state" / "known_hosts" / "prod").exists()
    code, out, _ = run(*base, "--yes")
    assert code == 0, out
    for host in test_hosts:
        assert f" {host.ip} ssh-ed25519 SHA256:" in out
    known = tmp_path / "state" / "known_hosts" / "prod"
    assert out.strip().endswith(f"recorded 3 key(s) of 3 host(s) in {known}")
    for host, name in zip(test_hosts, ("app-1", "app-2", "ch-1"), strict=True):
        with connect(Target(name, host.ip, user="root"), "prod", known, host.ssh_key_path) as c:
            assert c.run("hostname").stdout.strip() == host.name


def test_trust_of_an_unknown_host_names_the_stacks_hosts(tmp_path: Path) -> None:
    code, _, err = run(
        "deploy",
        "trust",
        "--stack",
        "prod",
        "--outputs",
        str(FIXTURE),
        "--host",
        "db-9",
        "--yes",
        "--state-dir",
        str(tmp_path),
    )
    assert code == 1
    assert "stack prod has no host 'db-9'; its hosts: app-1, app-2, ch-1, ch-2, ch-3" in err


def test_deploy_rollback_and_status_hand_the_stack_options_to_deploy_run_as_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import deploy.run
    from deploy.rollout import Gate, Options
    from deploy.run import BalancerChoice, Request
    from deploy.sources import Source
    from deploy.ssh import Access

    seen: list[Any] = []
    built = SimpleNamespace(version="0123456789ab", archive=tmp_path / "r.tar.gz")
    landed = SimpleNamespace(dashboard_url="https://dash.example")

    def run_deploy(req: Request, say: object, **to: object) -> tuple[list[object], object]:
        seen.append((req, to))
        return [], landed

    def run_rollback(req: Request, to: str, say: object) -> tuple[str, list[object], object]:
        seen.append((req, {"version": to}))
        return to, [], landed

    def run_status(*args: object) -> list[object]:
        seen.append(args)
        return []

    monkeypatch.setattr(deploy.run, "build", lambda platform, allow_dirty: built)
    monkeypatch.setattr(deploy.run, "run_deploy", run_deploy)
    monkeypatch.setattr(deploy.run, "run_rollback", run_rollback)
    monkeypatch.setattr(deploy.run, "run_status", run_status)
    stack = ["--stack", "prod", "--outputs", str(FIXTURE), "--ssh-user", "ops"]
    stack += ["--ssh-key", "/keys/ops", "--bastion", "jump@203.0.113.7:2222"]
    stack += ["--proxy-command", "nc %h %p", "--state-dir", str(tmp_path)]
    deploy_args = ["--host", "app-2", "--balancer", "none", "--slo-window", "0"]
    assert run("deploy", *stack, *deploy_args, "--skip-migrations")[0] == 0
    rollback_args = ["--balancer", "haproxy:/run/h.sock", "--haproxy-backend", "api"]
    assert run("rollback", *stack, *rollback_args, "--to", "ab12cd34ef56", "--dry-run")[0] == 0
    assert run("status", *stack, "--json")[0] == 0

    jump = Target("203.0.113.7", "203.0.113.7", 2222, user="jump")
    access = Access("ops", Path("/keys/ops"), jump, "nc %h %p", tmp_path)
    source = Source(FIXTURE, None)
    options = Options(
        user="ops", hosts=("app-2",), gate=None, command="adpulse deploy --stack prod"
    )
    assert seen[0] == (
        Request("prod", source, access, BalancerChoice("none"), options, False),
        {"release": built},
    )
    options = Options(
        user="ops", dry_run=True, gate=Gate(), command="adpulse rollback --stack prod"
    )
    haproxy = BalancerChoice("haproxy", Path("/run/h.sock"), ("api",))
    assert seen[1] == (
        Request("prod", source, access, haproxy, options, False),
        {"version": "ab12cd34ef56"},
    )
    assert seen[2] == ("prod", source, access)
