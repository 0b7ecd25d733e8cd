"""The stack's exports: the settings the services read, and no secret anywhere but its vault."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

from pulumi import Output

from adpulse.clickhouse.url import parse_clickhouse_url
from adpulse.settings import Settings, load_settings
from adpulse.topology import load_topology
from stacks.clickhouse import TOPOLOGY
from tests.stacks.conftest import SECRETS, Mocks, pulumi_test, secret_value

ROOT = Path(__file__).resolve().parents[2]
# What the brief and the deployed hosts rely on.
REQUIRED = {
    "clickhouse_url",
    "kafka_bootstrap",
    "redis_url",
    "postgres_url",
    "topology",
    "dashboard_url",
    "clickhouse_hosts",
    "app_hosts",
    "alarm_topic_arn",
    "clickhouse_password_secret_arn",
    "postgres_password_secret_arn",
}
# Where a secret may appear in resource inputs: the vault, and Redis (which needs its token).
SECRET_HOMES = {
    ("aws:secretsmanager/secretVersion:SecretVersion", "secretString"),
    ("aws:elasticache/replicationGroup:ReplicationGroup", "authToken"),
}


def test_every_required_output_exists(outputs: dict[str, Any]) -> None:
    assert REQUIRED <= set(outputs), f"missing: {sorted(REQUIRED - set(outputs))}"


@pulumi_test
def test_outputs_named_like_settings_load_as_settings(outputs: dict[str, Any]) -> Output[None]:
    """`ADPULSE_<NAME>=<output>` without translation: the settings accept every such output."""
    fields = {name: value for name, value in outputs.items() if name in Settings.model_fields}
    assert {"clickhouse_url", "kafka_bootstrap", "redis_url", "postgres_url", "topology"} <= set(
        fields
    )

    def check(values: dict[str, Any]) -> None:
        settings = load_settings(**values)
        assert load_topology(settings.topology) == TOPOLOGY
        assert settings.topic_replication_factor == 3, "MSK has min.insync.replicas=2"
        assert settings.kafka_bootstrap.count(":9094") == 3
        assert settings.redis_url is not None and settings.redis_url.startswith("rediss://")

    return Output.all(**fields).apply(check)


@pulumi_test
def test_clickhouse_url_holds_no_password(outputs: dict[str, Any]) -> Output[None]:
    def check(url: str) -> None:
        target = parse_clickhouse_url(url)
        assert target.password == "", "the password belongs in Secrets Manager"  # type: ignore[union-attr]
        assert target.secure and target.user == "ingest"  # type: ignore[union-attr]
        assert [h for h, _ in target.hosts] == list(TOPOLOGY.hosts)  # type: ignore[union-attr]

    return Output.from_input(outputs["clickhouse_url"]).apply(check)


@pulumi_test
def test_no_output_contains_a_secret(outputs: dict[str, Any]) -> Output[None]:
    def check(values: dict[str, Any]) -> None:
        text = json.dumps(values, default=str)
        for key, secret in SECRETS.items():
            assert secret not in text, f"the value of {key} leaks into a stack output"

    return Output.all(**outputs).apply(check)


def test_secrets_reach_only_their_vault_and_always_marked_secret(mocks: Mocks) -> None:
    values = set(SECRETS.values())
    for resource in mocks.resources:
        for key, value in resource.inputs.items():
            text = json.dumps(value, default=str)
            if not any(secret in text for secret in values):
                continue
            assert (resource.type, key) in SECRET_HOMES, (
                f"a secret leaks into {resource.name}.{key}"
            )
            assert secret_value(value) in values


@pulumi_test
def test_hosts_and_topology_outputs_describe_the_cluster(outputs: dict[str, Any]) -> Output[None]:
    def check(values: list[Any]) -> None:
        hosts, topology = values
        assert [h["name"] for h in hosts] == ["ch-1", "ch-2", "ch-3"]
        assert all(h["private_ip"] and h["private_dns"] for h in hosts)
        parsed = json.loads(topology)
        assert parsed["shards"] == [["ch-1", "ch-2", "ch-3"]]
        assert parsed["keeper"] == ["ch-1", "ch-2", "ch-3"]

    return Output.all(outputs["clickhouse_hosts"], outputs["clickhouse_topology"]).apply(check)


def test_pulumi_can_run_the_directory_as_it_does(tmp_path: Path) -> None:
    """`main: stacks/` makes Pulumi call `runpy.run_path("stacks")`; run it that way, mocked."""
    code = (
        "import runpy, pulumi\n"
        "from tests.stacks.conftest import CONFIG, MOCKS, SECRETS\n"
        "pulumi.runtime.set_mocks(MOCKS, project='adpulse', stack='prod', preview=False)\n"
        "pulumi.runtime.set_all_config(CONFIG, list(SECRETS))\n"
        "runpy.run_path('stacks', run_name='__main__')\n"
        "root = pulumi.runtime.settings.get_root_resource()\n"
        "print(sorted(root.outputs))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert REQUIRED <= set(ast.literal_eval(out.stdout.strip().splitlines()[-1]))


def test_the_stacks_directory_shadows_no_other_module() -> None:
    """run_path puts stacks/ first on sys.path, so a stacks/secrets.py would hide `secrets`."""
    taken = set(sys.stdlib_module_names) | set(packages_distributions())
    ours = {path.stem for path in (ROOT / "stacks").glob("*.py")} - {"__init__", "__main__"}
    assert not ours & taken, (
        f"stacks/ modules {sorted(ours & taken)} would hide modules of the same name when "
        "Pulumi runs the directory; rename them"
    )
