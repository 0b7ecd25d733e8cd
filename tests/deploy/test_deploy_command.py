"""`adpulse deploy`, `adpulse status` and `adpulse rollback` as a person runs them: the CLI onto
a real systemd host behind HAProxy (three hosts: test_rollout.py), the inventory from an outputs
file, the secrets from Secrets Manager (moto, in this process), strict host keys from the
stack's known_hosts.

`--skip-migrations` on every deploy: the Kafka topics and ClickHouse migrations that a deploy
applies first need a ClickHouse newer than this machine's 18.16 (tests/deploy/
test_remote_admin.py shows that step failing cleanly against it). See stack_on_hosts.py for what
the services reach here.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import deploy.run
from cli import app
from deploy import layout
from deploy.inventory import StackInventory
from deploy.release import Release, build_release
from deploy.rollout import Options
from deploy.run import BalancerChoice, Request
from deploy.sources import Source
from deploy.ssh import Access
from tests.conftest import fake_aws_credentials
from tests.deploy.stack_on_hosts import STACK, StackOnHosts, stack_on_hosts
from tests.support.hosts import boot_hosts, skip_unless_possible
from tests.support.releases import variant

PLATFORM = "manylinux_2_36_x86_64"
UNITS = tuple(layout.unit_name(s) for s in layout.SERVICES)


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Release]:
    skip_unless_possible()
    out = tmp_path_factory.mktemp("cli-releases")
    first = build_release(out, platform=PLATFORM, allow_dirty=True)
    return {"first": first, "second": variant(first, out, "cli-second", {})}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackOnHosts]:
    skip_unless_possible()
    work = tmp_path_factory.mktemp("cli-stack")
    with boot_hosts(1) as hosts, stack_on_hosts(hosts, work) as s:
        yield s


@pytest.fixture
def cli(
    stack: StackOnHosts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[list[str], Any]]:
    """The options every command here takes, with the stack's secrets in moto's Secrets
    Manager at the ARNs an outputs file names; yields (options, run)."""
    from moto import mock_aws

    fake_aws_credentials(monkeypatch)
    with mock_aws():
        import boto3

        client = boto3.client("secretsmanager", region_name=stack.inventory.region)
        doc = json.loads(stack.outputs.read_text())
        arns = {}
        for key, value in stack.inventory.secrets.items():
            arns[key] = client.create_secret(Name=f"e2e/{key}", SecretString=value)["ARN"]
        doc["clickhouse_secret_arns"] |= {
            k: v for k, v in arns.items() if k not in ("kafka-scram", "postgres-master")
        }
        doc["kafka_scram_secret_arn"] = arns["kafka-scram"]
        doc["postgres_master_secret_arn"] = arns["postgres-master"]
        outputs = tmp_path / "outputs.json"
        outputs.write_text(json.dumps(doc))
        state = tmp_path / "state"
        (state / "known_hosts").mkdir(parents=True)
        shutil.copy(stack.known_hosts, state / "known_hosts" / STACK)
        options = [
            "--stack", STACK, "--outputs", str(outputs), "--ssh-user", "root",
            "--ssh-key", str(stack.key_file), "--state-dir", str(state),
        ]  # fmt: skip
        runner = CliRunner()

        def run(*args: str) -> Any:
            return runner.invoke(app, list(args), catch_exceptions=False)

        yield options, run


def _rolling(stack: StackOnHosts) -> list[str]:
    socket = f"haproxy:{stack.balancer.socket_path}"
    return ["--balancer", socket, "--slo-window", "2", "--skip-migrations"]


def _healthy_status(run: Any, options: list[str], *extra: str) -> Any:
    """`adpulse status` right after a deploy or rollback, which must exit 0 (healthy) at once:
    it returned only once every host it restarted passed these same checks (status reads them
    once, without the load balancer), so a failure here is a real one, not one to wait out."""
    result = run("status", *options, *extra)
    assert result.exit_code == 0, f"unhealthy right after the deploy:\n{result.output}"
    return result


def test_dry_run_shows_the_plan_and_changes_nothing(
    cli: tuple[list[str], Any], stack: StackOnHosts, releases: dict[str, Release]
) -> None:
    options, run = cli
    release = releases["first"]
    result = run("deploy", *options, "--release", str(release.archive), "--dry-run")
    assert result.exit_code == 0, result.output
    for host in stack.hosts:
        assert f"{host.name} ({host.ip}):" in result.output
    assert result.output.count(f"upload and install release {release.version}") == 1
    assert result.output.count("switch /opt/adpulse/current from nothing") == 1
    restarts = [line for line in result.output.splitlines() if "restart adpulse-api" in line]
    assert len(restarts) == 1 and all(line.endswith("not running") for line in restarts)
    for host in stack.hosts:
        assert host.ssh("test -e /opt/adpulse/current").returncode == 1
        assert host.ssh("ls /opt/adpulse/releases 2>/dev/null | wc -l").stdout.strip() == "0"


def test_deploy_then_status_then_the_same_deploy_restarts_nothing(
    cli: tuple[list[str], Any], stack: StackOnHosts, releases: dict[str, Release]
) -> None:
    options, run = cli
    release = releases["first"]
    result = run("deploy", *options, "--release", str(release.archive), *_rolling(stack))
    assert result.exit_code == 0, result.output
    assert f"release {release.version} runs on 1 host(s) (1 changed)" in result.output
    assert result.output.rstrip().endswith("dashboard: http://dashboard.e2e.invalid")

    hosts = json.loads(_healthy_status(run, options, "--json").output)["hosts"]
    assert [h["host"] for h in hosts] == [h.name for h in stack.hosts]
    for h in hosts:
        assert h["release"] == release.version
        assert set(h["units"]) == set(UNITS)
        assert all(state.startswith("active (running)") for state in h["units"].values())
        assert set(h["health"].values()) == {"ok"}, h["health"]
    show = "systemctl show -p ActiveEnterTimestampMonotonic --value " + " ".join(UNITS)
    started = {host.name: host.ssh(show).stdout.split() for host in stack.hosts}
    assert all(len(values) == 3 and "0" not in values for values in started.values())

    again = run("deploy", *options, "--release", str(release.archive), *_rolling(stack))
    assert again.exit_code == 0, again.output
    assert again.output.count("nothing to do") == 1
    assert "(0 changed)" in again.output
    assert {host.name: host.ssh(show).stdout.split() for host in stack.hosts} == started
    text = _healthy_status(run, options)
    assert f"release {release.version}" in text.output


def _dry_request(options: list[str]) -> Request:
    """The `deploy.run.Request` that `options` (the `cli` fixture's) and `--dry-run` give."""
    given = dict(zip(options[::2], options[1::2], strict=True))
    user = given["--ssh-user"]
    access = Access(user, Path(given["--ssh-key"]), state_dir=Path(given["--state-dir"]))
    return Request(
        given["--stack"],
        Source(Path(given["--outputs"])),
        access,
        BalancerChoice("none"),
        Options(user=user, dry_run=True, command=f"adpulse rollback --stack {STACK}"),
        migrate=False,
    )


def test_rollback_goes_to_the_release_before_current(
    cli: tuple[list[str], Any],
    stack: StackOnHosts,
    releases: dict[str, Release],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options, run = cli
    first, second = releases["first"], releases["second"]
    result = run("deploy", *options, "--release", str(second.archive), *_rolling(stack))
    assert result.exit_code == 0, result.output
    status = json.loads(run("status", *options, "--json").output)["hosts"]
    assert {h["release"] for h in status} == {second.version}
    assert {h["previous"] for h in status} == {first.version}

    # The rollback finds its target on the inventory it deploys with: one load of it (and one
    # read of Secrets Manager), not one for each.
    loads: list[str] = []
    load = deploy.run.load_stack

    def counted(name: str, source: Source) -> StackInventory:
        loads.append(name)
        return load(name, source)

    said: list[str] = []
    with monkeypatch.context() as patch:
        patch.setattr(deploy.run, "load_stack", counted)
        version, outcomes, _ = deploy.run.run_rollback(_dry_request(options), None, said.append)
    assert (version, loads) == (first.version, [STACK])
    assert said[0] == f"rolling back to release {first.version}"
    assert [o.verdict for o in outcomes] == ["dry run"]

    back = run("rollback", *options, "--balancer", f"haproxy:{stack.balancer.socket_path}",
               "--slo-window", "2")  # fmt: skip
    assert back.exit_code == 0, back.output
    assert f"rolling back to release {first.version}" in back.output
    assert f"release {first.version} runs on 1 host(s)" in back.output
    after = json.loads(_healthy_status(run, options, "--json").output)["hosts"]
    assert {h["release"] for h in after} == {first.version}
    assert all(set(h["health"].values()) == {"ok"} for h in after)


def test_a_missing_outputs_file_is_one_line_naming_it(
    cli: tuple[list[str], Any], tmp_path: Path
) -> None:
    _, run = cli
    missing = tmp_path / "nope.json"
    result = run("status", "--stack", STACK, "--outputs", str(missing))
    assert result.exit_code == 1
    assert f"no outputs file {missing}" in result.output
    assert len(result.output.strip().splitlines()) == 1
