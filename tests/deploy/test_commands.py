"""`adpulse deploy trust | inventory` end to end: the outputs file in, real hosts' keys out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
