"""The stack's exports: the settings the services read, and no secret anywhere but its vault."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pulumi import Output

from adpulse.clickhouse.url import parse_clickhouse_url
from adpulse.settings import Settings, load_settings
from adpulse.topology import load_topology
from stacks.clickhouse import TOPOLOGY
from stacks.database import APP_USER, MASTER_USER
from stacks.inventory import Inventory
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
    "postgres_master_secret_arn",
    "dashboard_api_key_secret_arn",
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
        assert settings.kafka_bootstrap.count(":9096") == 3, "the SASL/SCRAM listener"
        assert settings.redis_url is not None and settings.redis_url.startswith("rediss://")

    return Output.all(**fields).apply(check)


@pulumi_test
def test_clickhouse_url_holds_no_password(outputs: dict[str, Any]) -> Output[None]:
    def check(url: str) -> None:
        target = parse_clickhouse_url(url)
        assert target.password == "", "the password belongs in Secrets Manager"  # type: ignore[union-attr]
        assert target.secure and target.user == "ingest"  # type: ignore[union-attr]
        fqdns = [f"{h}.adpulse.internal" for h in TOPOLOGY.hosts]
        assert [h for h, _ in target.hosts] == fqdns  # type: ignore[union-attr]

    return Output.from_input(outputs["clickhouse_url"]).apply(check)


@pulumi_test
def test_the_services_postgres_login_is_not_the_master(
    outputs: dict[str, Any], program: Any
) -> Output[None]:
    """`postgres_url` and the secret joined into it are adpulse_app's; the master's secret is
    exported apart, for the migration step that creates adpulse_app."""

    def check(values: list[Any]) -> None:
        url, password_arn, master_arn, app_arn, rds_master_arn = values
        assert urlsplit(url).username == APP_USER != MASTER_USER
        assert password_arn == app_arn != rds_master_arn
        assert master_arn == rds_master_arn

    return Output.all(
        outputs["postgres_url"],
        outputs["postgres_password_secret_arn"],
        outputs["postgres_master_secret_arn"],
        program.secrets.arns["postgres-app-password"],
        program.database.master_secret_arn,
    ).apply(check)


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
        assert [h["fqdn"] for h in hosts] == [f"{h['name']}.adpulse.internal" for h in hosts]
        assert all(h["private_ip"] and h["instance_id"] for h in hosts)
        parsed = json.loads(topology)
        assert parsed["shards"] == [["ch-1", "ch-2", "ch-3"]]
        assert parsed["keeper"] == ["ch-1", "ch-2", "ch-3"]
        assert parsed["addresses"] == {h["name"]: h["fqdn"] for h in hosts}

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


def test_pulumi_runs_the_program_with_uv_in_the_project_venv() -> None:
    """`toolchain: pip` would list plugins with `python -m pip`, which the uv-made venv lacks."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    options = project["runtime"]["options"]
    assert project["runtime"]["name"] == "python" and project["main"] == "stacks/"
    assert options == {"toolchain": "uv", "virtualenv": ".venv"}
    assert (ROOT / "uv.lock").is_file(), "uv's toolchain syncs the venv from uv.lock"
    venv = (ROOT / ".venv" / "pyvenv.cfg").read_text()
    assert any(line.startswith("uv = ") for line in venv.splitlines()), ".venv is not uv's"


def _takes_tags(typ: str) -> bool:
    """Whether the SDK class of a resource type accepts a `tags` argument."""
    package, module, name = typ.split(":")
    section = module.split("/")[0]
    path = f"pulumi_{package}" + ("" if section == "index" else f".{section}")
    cls = getattr(importlib.import_module(path), name)
    return "tags" in inspect.signature(cls._internal_init).parameters


def test_every_taggable_resource_carries_the_default_tags(mocks: Mocks) -> None:
    """A sweep over every recorded resource, whoever created it."""
    taggable = [r for r in mocks.resources if not r.type.startswith("adpulse:")]
    taggable = [r for r in taggable if _takes_tags(r.type)]
    assert len({r.type for r in taggable}) > 20, "the sweep sees the whole stack"
    for resource in taggable:
        tags = resource.inputs.get("tags") or {}
        assert {k: tags.get(k) for k in ("Project", "Stack", "ManagedBy")} == {
            "Project": "adpulse",
            "Stack": "test",
            "ManagedBy": "pulumi",
        }, f"{resource.type} {resource.name} lacks the default tags: {tags}"


def test_every_instance_root_volume_carries_the_default_tags(mocks: Mocks) -> None:
    """EC2 does not pass an instance's tags on to its root volume: the transform must."""
    instances = [r for r in mocks.resources if r.type == "aws:ec2/instance:Instance"]
    roles = {r.inputs["tags"]["Role"] for r in instances}
    assert {"clickhouse", "app"} <= roles, roles
    for instance in instances:
        root = instance.inputs["rootBlockDevice"]
        assert root["encrypted"] is True, "the transform keeps the root volume's own settings"
        assert {k: root.get("tags", {}).get(k) for k in ("Project", "Stack", "ManagedBy")} == {
            "Project": "adpulse",
            "Stack": "test",
            "ManagedBy": "pulumi",
        }, f"{instance.name}: root volume tags {root.get('tags')}"
        assert "volumeTags" not in instance.inputs, "it would fight the data volumes' own tags"


def test_a_resources_own_tags_are_kept_beside_the_defaults(mocks: Mocks) -> None:
    (vpc,) = [r for r in mocks.resources if r.type == "aws:ec2/vpc:Vpc"]
    assert vpc.inputs["tags"]["Name"] == "adpulse-test-vpc"
    assert vpc.inputs["tags"]["Stack"] == "test"


def _zone_of_subnets(inventory: Inventory) -> dict[str, str]:
    subnets = inventory.of_type("aws:ec2/subnet:Subnet")
    return {s.id: s.settings["availabilityZone"] for s in subnets}


def _hosts(inventory: Inventory, role: str) -> list[dict[str, Any]]:
    return [
        r.settings
        for r in inventory.of_type("aws:ec2/instance:Instance")
        if r.settings["tags"].get("Role") == role
    ]


def test_the_prod_stack_is_the_seed_shape(prod_inventory: Inventory) -> None:
    inv = prod_inventory
    zone = _zone_of_subnets(inv)
    nodes = _hosts(inv, "clickhouse")
    assert [n["instanceType"] for n in nodes] == ["r6g.2xlarge"] * 3
    assert len({zone[n["subnetId"]] for n in nodes}) == 3, "one replica per AZ"
    (msk,) = [c.settings for c in inv.of_type("aws:msk/cluster:Cluster")]
    assert msk["numberOfBrokerNodes"] == 3
    assert msk["brokerNodeGroupInfo"]["instanceType"] == "kafka.m7g.large"
    (redis,) = [
        g.settings for g in inv.of_type("aws:elasticache/replicationGroup:ReplicationGroup")
    ]
    assert redis["numCacheClusters"] == 2 and redis["automaticFailoverEnabled"] is True
    (pg,) = [d.settings for d in inv.of_type("aws:rds/instance:Instance")]
    assert pg["multiAz"] is True and pg["instanceClass"] == "db.t4g.medium"
    (alb,) = [lb.settings for lb in inv.of_type("aws:lb/loadBalancer:LoadBalancer")]
    assert alb["loadBalancerType"] == "application" and alb["internal"] is False
    assert len(_hosts(inv, "app")) == 2
    assert len(inv.of_type("aws:ec2/natGateway:NatGateway")) == 3
    assert inv.of_type("aws:s3/bucket:Bucket") and inv.of_type(
        "aws:cloudwatch/metricAlarm:MetricAlarm"
    )
    assert {e.name for e in inv.exports} >= REQUIRED


def test_the_dev_stack_is_smaller_and_still_has_every_part(
    dev_inventory: Inventory, prod_inventory: Inventory
) -> None:
    dev, prod = dev_inventory, prod_inventory
    # Every kind of resource prod has, dev has: the whole pipeline runs.
    assert {r.type for r in prod.cloud_resources} == {r.type for r in dev.cloud_resources}
    assert len(dev.cloud_resources) < len(prod.cloud_resources)
    assert [n["instanceType"] for n in _hosts(dev, "clickhouse")] == ["r6g.large"]
    assert len(_hosts(dev, "app")) == 1
    assert len(dev.of_type("aws:ec2/natGateway:NatGateway")) == 1
    (msk,) = [c.settings for c in dev.of_type("aws:msk/cluster:Cluster")]
    assert msk["brokerNodeGroupInfo"]["instanceType"] == "kafka.t3.small"
    (pg,) = [d.settings for d in dev.of_type("aws:rds/instance:Instance")]
    assert pg["multiAz"] is False and pg["deletionProtection"] is False
    assert {e.name for e in dev.exports} == {e.name for e in prod.exports}


# Inputs that name a resource in the account. Private zone and DHCP domain names may repeat:
# each stack's zone belongs to its own VPC.
_NAME_KEYS = (
    "name",
    "namePrefix",
    "identifier",
    "identifierPrefix",
    "finalSnapshotIdentifier",
    "bucketPrefix",
    "clusterName",
    "replicationGroupId",
    "alarmName",
)
_PER_VPC = {"aws:route53/zone:Zone", "aws:route53/record:Record"}


def _physical_names(inventory: Inventory) -> set[tuple[str, str, str]]:
    return {
        (r.type, key, str(r.settings[key]))
        for r in inventory.cloud_resources
        if r.type not in _PER_VPC
        for key in _NAME_KEYS
        if key in r.settings
    }


def test_two_stacks_share_no_physical_name(
    dev_inventory: Inventory, prod_inventory: Inventory
) -> None:
    dev, prod = _physical_names(dev_inventory), _physical_names(prod_inventory)
    assert len(prod) > 10, "the comparison sees the named resources"
    assert not dev & prod, f"names both stacks would create: {sorted(dev & prod)}"
