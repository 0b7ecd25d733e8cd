"""The deploy inventory: the outputs file, the Pulumi CLI and AWS discovery give the same facts,
and every missing or malformed part is one line that names it.

The outputs fixtures are what the stack program exports under its mocks (`stacks.inventory`);
a test keeps them equal to a fresh run. Discovery runs against moto, with the resources the
fixture describes created as `pulumi up` would, tagged as the program tags them.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import gzip
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from adpulse.settings import Settings
from deploy import settings_env, stack_facts
from deploy.discover import discover
from deploy.inventory import (
    InventoryError,
    StackInventory,
    from_outputs,
    from_pulumi_cli,
    load_outputs_file,
)
from deploy.node_userdata import node_facts
from deploy.settings_env import joined, service_environment
from deploy.stack_secrets import DEPLOY_SECRETS, with_secrets
from stacks.cloud_config import for_ec2
from stacks.cluster_shape import DEFAULT_VERSION, grid_topology
from stacks.userdata import CA_FILE
from tests.conftest import fake_aws_credentials

FIXTURES = Path(__file__).parent / "fixtures"
STACKS = ("prod", "dev")
SECRETS: dict[str, str] = json.loads((FIXTURES / "secrets.json").read_text())
REGION = "us-east-1"
OTHER = "staging"  # another stack in the same account and region, which discovery must skip
REQUIRED = (
    "stack_name", "aws_region", "app_hosts", "clickhouse_hosts", "clickhouse_url", "topology",
    "clickhouse_topology_toml", "clickhouse_ca_pem", "kafka_bootstrap", "kafka_security_protocol",
    "kafka_sasl_mechanism", "kafka_sasl_username", "topic_replication_factor", "redis_url",
    "postgres_url", "api_host", "api_port", "dashboard_port", "dashboard_url",
    "cloudwatch_metrics", "clickhouse_secret_arns", "kafka_scram_secret_arn",
    "postgres_master_secret_arn",
)  # fmt: skip


def outputs(stack: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / f"outputs-{stack}.json").read_text())
    return doc


def write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


def one_line_error(call: Callable[[], object]) -> str:
    with pytest.raises(InventoryError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def with_fixture_secrets(inv: StackInventory) -> StackInventory:
    return dataclasses.replace(inv, secrets={key: SECRETS[key] for key in DEPLOY_SECRETS})


# The mocks number instances' addresses by how many resources the program declared before them
# (stacks/mocks.py), so a resource added anywhere shifts them all: those are left out.
_COUNTED = ("private_ip", "private_dns")


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for host in [*doc.get("app_hosts", []), *doc.get("clickhouse_hosts", [])]:
        for key in _COUNTED:
            host.pop(key, None)
    return doc


@pytest.mark.parametrize("stack", STACKS)
def test_the_fixtures_are_what_the_program_exports(stack: str) -> None:
    from stacks.inventory import collect

    exported = json.loads(json.dumps({e.name: e.value for e in collect(stack).exports}))
    path = FIXTURES / f"outputs-{stack}.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(json.dumps(exported, indent=4, sort_keys=True) + "\n")
    assert comparable(outputs(stack)) == comparable(exported), (
        f"the stack's outputs changed: rewrite {path.name} with UPDATE_SNAPSHOTS=1, then make "
        "deploy/inventory.py and deploy/discover.py read the change"
    )


# --- the outputs file ---------------------------------------------------------------------------


def test_the_outputs_file_gives_hosts_endpoints_and_secret_arns(tmp_path: Path) -> None:
    doc = outputs("prod")
    inv = load_outputs_file(write(tmp_path / "outputs.json", doc), "prod")
    assert [(h.name, h.role, h.fqdn) for h in inv.clickhouse_hosts] == [
        (f"ch-{n}", "clickhouse", f"ch-{n}.adpulse.internal") for n in (1, 2, 3)
    ]
    assert [(h.name, h.private_ip) for h in inv.app_hosts] == [
        (h["name"], h["private_ip"]) for h in doc["app_hosts"]
    ]
    assert (inv.stack, inv.region, inv.topology) == ("prod", REGION, "cluster")
    assert inv.kafka_bootstrap == doc["kafka_bootstrap"] and inv.api_port == 8000
    assert inv.secret_arns == {
        **doc["clickhouse_secret_arns"],
        "kafka-scram": doc["kafka_scram_secret_arn"],
        "postgres-master": doc["postgres_master_secret_arn"],
    }
    assert inv.secrets == {}  # values are read from Secrets Manager, never from outputs


def test_hosts_come_in_name_order_whatever_the_document_s_order() -> None:
    doc = outputs("prod")
    shuffled = copy.deepcopy(doc)
    shuffled["clickhouse_hosts"].reverse()
    shuffled["clickhouse_hosts"][0]["name"] = "ch-10"  # after ch-2, not between ch-1 and ch-2
    names = [h.name for h in from_outputs(shuffled, "prod").clickhouse_hosts]
    assert names == ["ch-1", "ch-2", "ch-10"]


@pytest.mark.parametrize("name", REQUIRED)
def test_a_missing_output_is_one_line_naming_it(name: str, tmp_path: Path) -> None:
    doc = outputs("prod")
    del doc[name]
    path = write(tmp_path / "outputs.json", doc)
    message = one_line_error(lambda: load_outputs_file(path, "prod"))
    assert message.startswith(f"outputs file {path}: no output `{name}`")
    assert f"pulumi stack output --json --show-secrets --stack prod > {path}`" in message


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda doc: doc.__setitem__(key, value)


@pytest.mark.parametrize(
    ("fault", "named"),
    [
        (_set("api_port", "8000"), "output `api_port` is a string, not an integer"),
        (_set("topic_replication_factor", True), "is true or false, not an integer"),
        (_set("cloudwatch_metrics", "true"), "`cloudwatch_metrics` is a string, not true or"),
        (_set("redis_url", "[secret]"), "`redis_url` is masked as [secret] (add --show-secrets)"),
        (_set("kafka_bootstrap", ""), "output `kafka_bootstrap` is empty"),
        (_set("stack_name", "dev"), "the outputs of stack 'dev', not 'prod'"),
        (_set("app_hosts", []), "output `app_hosts` lists no hosts"),
        (_set("app_hosts", ["app-1"]), "`app_hosts` entry 1 is a string, not an object"),
        (lambda d: d["clickhouse_hosts"][1].pop("private_ip"), "entry 2 lacks `private_ip`"),
        (lambda d: d["clickhouse_hosts"][0].pop("fqdn"), "`clickhouse_hosts` entry 1 lacks `fqdn`"),
        (
            lambda d: d["clickhouse_secret_arns"].pop("redis-auth-token"),
            "output `clickhouse_secret_arns` lacks `redis-auth-token`",
        ),
    ],
)
def test_a_malformed_output_is_one_line_naming_it(
    fault: Callable[[dict[str, Any]], None], named: str
) -> None:
    doc = outputs("prod")
    fault(doc)
    message = one_line_error(lambda: from_outputs(doc, "prod", source="outputs.json"))
    assert message.startswith("outputs.json: ") and named in message
    assert "pulumi stack output --json --show-secrets --stack prod" in message


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (None, "no outputs file"),
        ('{"clickhouse_url": ', "is not JSON (Expecting value at line 1)"),
        ("", "is not JSON"),
        ('["clickhouse_url"]', "holds a list, not the JSON object of outputs"),
        (b"\xff\xfe", "cannot read outputs file"),
    ],
)
def test_a_missing_or_malformed_file_is_one_line_naming_the_path(
    content: str | bytes | None, named: str, tmp_path: Path
) -> None:
    path = tmp_path / "outputs.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    message = one_line_error(lambda: load_outputs_file(path, "prod"))
    assert named in message and str(path) in message
    assert f"pulumi stack output --json --show-secrets --stack prod > {path}" in message


# --- the Pulumi CLI -----------------------------------------------------------------------------


def fake_pulumi(bin_dir: Path, script: str) -> None:
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(f"#!/bin/sh\n{script}\n")
    (bin_dir / "pulumi").chmod(0o755)


def test_without_the_pulumi_cli_the_error_says_so(tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    message = one_line_error(lambda: from_pulumi_cli("prod"))
    assert "the Pulumi CLI is not on PATH" in message and "--outputs FILE" in message
    assert "pulumi stack output --json --show-secrets --stack prod" in message


def test_the_cli_s_document_gives_the_outputs_file_s_inventory(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """The CLI is a stand-in that insists on the exact arguments and directory."""
    doc = write(tmp_path / "outputs.json", outputs("prod"))
    project = tmp_path / "project"
    project.mkdir()
    expected = "stack output --json --show-secrets --stack prod --non-interactive"
    fake_pulumi(
        tmp_path / "bin",
        f'[ "$*" = "{expected}" ] || {{ echo "error: called with $*" >&2; exit 2; }}\n'
        f'[ "$(pwd)" = "{project}" ] || {{ echo "error: run in $(pwd)" >&2; exit 2; }}\n'
        f'cat "{doc}"',
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    assert from_pulumi_cli("prod", cwd=project) == load_outputs_file(doc, "prod")


def test_a_stack_the_cli_does_not_know_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: Any
) -> None:
    fake_pulumi(tmp_path / "bin", "echo \"error: no stack named 'nope' found\" >&2\nexit 255")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    message = one_line_error(lambda: from_pulumi_cli("nope", cwd=tmp_path))
    assert "failed for stack 'nope': no stack named 'nope' found" in message
    assert "`pulumi stack ls`" in message


def test_repr_never_shows_a_secret() -> None:
    inv = with_fixture_secrets(from_outputs(outputs("prod"), "prod"))
    scram_password = json.loads(SECRETS["kafka-scram"])["password"]
    for text in (repr(inv), str(inv), f"{inv}", f"{[inv]}"):
        for value in [*inv.secrets.values(), scram_password]:
            assert value not in text
    assert "'kafka-scram': '***'" in repr(inv)
    assert f"clickhouse_url={inv.clickhouse_url!r}" in repr(inv)  # the rest is all there


# --- the settings -------------------------------------------------------------------------------


def settings_from(env: dict[str, str], monkeypatch: Any) -> Settings:
    """Settings read from exactly `env`, as a service started with it would read them."""
    for name in list(os.environ):
        if name.upper().startswith("ADPULSE_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize("stack", STACKS)
def test_the_service_environment_builds_the_settings_of_the_stack(
    stack: str, monkeypatch: Any
) -> None:
    from sqlalchemy.engine import make_url

    from adpulse.metadata.store import store_url

    inv = with_fixture_secrets(from_outputs(outputs(stack), stack))
    plain, secret = service_environment(inv)
    assert all(name.startswith("ADPULSE_") for name in [*plain, *secret])
    assert not any(value in text for value in SECRETS.values() for text in plain.values())
    s = settings_from({**plain, **secret}, monkeypatch)
    for name in settings_env.SAME_NAME:
        assert getattr(s, name) == getattr(inv, name), name
    assert (s.stack_name, s.aws_region, s.cloudwatch_metrics) == (stack, REGION, True)
    assert s.topology == ("cluster" if stack == "prod" else "/etc/adpulse/clickhouse-topology.toml")
    assert s.clickhouse_ingest_password is not None and s.clickhouse_api_password is not None
    assert s.clickhouse_ingest_password.get_secret_value() == SECRETS["clickhouse-ingest-password"]
    assert s.clickhouse_api_password.get_secret_value() == SECRETS["clickhouse-api-password"]
    assert s.clickhouse_admin_password is None  # the migration step's, not the services'
    assert s.kafka_sasl_password is not None
    assert (
        s.kafka_sasl_password.get_secret_value() == json.loads(SECRETS["kafka-scram"])["password"]
    )
    postgres = make_url(store_url(s))
    assert (postgres.username, postgres.password) == (
        "adpulse_app",
        SECRETS["postgres-app-password"],
    )
    assert postgres.host == urlsplit(inv.postgres_url).hostname
    assert postgres.query == {"sslmode": "require"}
    assert s.redis_url is not None
    redis = urlsplit(s.redis_url)
    assert (redis.scheme, redis.hostname, redis.port) == (
        "rediss",
        urlsplit(inv.redis_url).hostname,
        6379,
    )
    assert unquote(redis.password or "") == SECRETS["redis-auth-token"]
    # The consumer's /healthz and /metrics are reached from inside the VPC, as the API is.
    assert s.metrics_host == "0.0.0.0" and plain["ADPULSE_METRICS_HOST"] == "0.0.0.0"
    # The dashboard's key, under the API's name and the dashboard's, one value.
    key = SECRETS["dashboard-api-key"]
    assert s.dashboard_api_key is not None and s.dashboard_api_key.get_secret_value() == key
    assert secret["ADPULSE_DASHBOARD_API_KEY"] == secret["ADPULSE_API_KEY"] == key


def test_the_dashboard_key_reaches_the_api_and_the_dashboard_and_no_one_else() -> None:
    from adpulse.metadata.api_keys import is_well_formed
    from deploy.units import secrets_by_service

    inv = with_fixture_secrets(from_outputs(outputs("prod"), "prod"))
    plain, secret = service_environment(inv)
    key = SECRETS["dashboard-api-key"]
    holders = {
        (service, name)
        for service, values in secrets_by_service(secret).items()
        for name, value in values.items()
        if value == key
    }
    assert holders == {("api", "ADPULSE_DASHBOARD_API_KEY"), ("dashboard", "ADPULSE_API_KEY")}
    assert key not in plain.values()
    assert is_well_formed(key), "the API refuses to register a key of another form"


def test_a_password_with_url_characters_survives_the_join() -> None:
    from redis.connection import parse_url
    from sqlalchemy.engine import make_url

    password = "p@ss:w/rd?#%&"
    postgres = joined("postgresql://adpulse_app@db.internal:5432/adpulse?sslmode=require", password)
    assert make_url(postgres).password == password
    redis = parse_url(joined("rediss://cache.internal:6379", password))  # type: ignore[no-untyped-call]
    assert redis["password"] == password


def test_the_environment_needs_the_secret_values() -> None:
    inv = with_fixture_secrets(from_outputs(outputs("prod"), "prod"))
    partial = dataclasses.replace(inv, secrets={**inv.secrets, "redis-auth-token": ""})
    message = one_line_error(lambda: service_environment(partial))
    assert "no value for secret redis-auth-token" in message and "with_secrets" in message


def test_a_name_settings_does_not_have_fails_instead_of_going_unset(monkeypatch: Any) -> None:
    """Settings ignores unknown ADPULSE_* names, so a renamed field must fail here, loudly."""
    monkeypatch.setattr(settings_env, "SAME_NAME", (*settings_env.SAME_NAME, "dashboard_url"))
    inv = with_fixture_secrets(from_outputs(outputs("prod"), "prod"))
    with pytest.raises(RuntimeError, match="Settings has no field dashboard_url"):
        service_environment(inv)


def test_the_program_s_constants_the_deploy_copies_are_the_program_s() -> None:
    from stacks import cache, database, msk, network, secret_store
    from stacks.config import names, validate

    assert stack_facts.PROJECT == validate.PROJECT
    assert stack_facts.STACK_SECRETS == tuple(secret_store.GENERATED_LENGTH)
    assert stack_facts.MSK_SECRET_PREFIX == msk.MSK_SECRET_PREFIX
    assert stack_facts.scram_secret_prefix("prod") == msk.scram_secret_prefix("adpulse", "prod")
    assert stack_facts.name_prefix("prod") == names.name_prefix("prod")
    assert (stack_facts.API_PORT, stack_facts.DASHBOARD_PORT, stack_facts.METRICS_PORT) == (
        network.API_PORT,
        network.DASHBOARD_PORT,
        network.METRICS_PORT,
    )
    assert stack_facts.METRICS_PORT == Settings.model_fields["metrics_port"].default
    assert stack_facts.KAFKA_SECURITY_PROTOCOL == msk.SECURITY_PROTOCOL
    assert stack_facts.KAFKA_SASL_MECHANISM == msk.SASL_MECHANISM
    assert stack_facts.postgres_url("h", 5432, "adpulse") == database.postgres_url("h")
    assert stack_facts.redis_url("h", 6379, tls=True) == cache.redis_url("h")
    # API_HOST has no constant in stacks/: the fixtures (a fresh export) hold it.
    assert all(outputs(s)["api_host"] == stack_facts.API_HOST for s in STACKS)


# --- ClickHouse user data -----------------------------------------------------------------------


def test_a_node_s_facts_are_read_whatever_the_file_encoding() -> None:
    ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    packed = base64.b64encode(gzip.compress(ca.encode())).decode()
    config = {
        "fqdn": "ch-2.adpulse.internal",
        "write_files": [{"path": CA_FILE, "encoding": "gz+b64", "content": packed}],
    }
    text = (
        "#cloud-config\n"
        "# adpulse ClickHouse node ch-2 of adpulse: 2 shard(s) x 2 replica(s): rendered by\n"
    )
    facts = node_facts(text + yaml.safe_dump(config), "ch-2")
    assert (facts.host, facts.fqdn, facts.shards, facts.replicas) == ("ch-2", config["fqdn"], 2, 2)
    assert facts.ca_pem == ca


def test_user_data_the_program_did_not_write_is_one_line_naming_the_node() -> None:
    message = one_line_error(lambda: node_facts("#!/bin/sh\necho hi\n", "instance i-0abc (ch-1)"))
    assert message.startswith("instance i-0abc (ch-1) has no adpulse ClickHouse user data")


# --- discovery against moto ---------------------------------------------------------------------


@pytest.fixture
def moto_session(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import boto3
    from moto import mock_aws

    fake_aws_credentials(monkeypatch)
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def stack_tags(stack: str) -> list[dict[str, str]]:
    """What stacks/default_tags.py puts on every taggable resource."""
    return [
        {"Key": "Project", "Value": "adpulse"},
        {"Key": "Stack", "Value": stack},
        {"Key": "ManagedBy", "Value": "pulumi"},
    ]


def answer_what_moto_lacks(session: Any, cluster_arn: str, brokers: str, factor: int) -> None:
    """moto 5.2.5 has no GetBootstrapBrokers nor DescribeConfigurationRevision: answer those two
    calls only, every other call reaching moto. Stubber would take over every call of the
    client, so this registers for the two operations alone and checks each answer against the
    service model with the same `validate_parameters` that `Stubber.add_response` uses."""
    from botocore.awsrequest import AWSResponse
    from botocore.validate import validate_parameters

    answers: dict[str, dict[str, Any]] = {
        "GetBootstrapBrokers": {
            "BootstrapBrokerStringSaslScram": brokers,
            "BootstrapBrokerStringTls": brokers.replace(":9096", ":9094"),
        },
        "DescribeConfigurationRevision": {
            "Arn": "arn:aws:kafka:us-east-1:123456789012:configuration/adpulse-msk-config/1",
            "Revision": 1,
            "ServerProperties": f"auto.create.topics.enable=false\n"
            f"default.replication.factor={factor}\nmin.insync.replicas=2\n".encode(),
        },
    }

    def answer(model: Any, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        if model.name == "GetBootstrapBrokers":
            assert cluster_arn in unquote(params["url_path"]), params["url_path"]
        response = copy.deepcopy(answers[model.name])
        validate_parameters(response, model.output_shape)
        return AWSResponse(params["url"], 200, {}, None), response

    for operation in answers:
        session.events.register(f"before-call.kafka.{operation}", answer)


def node_user_data(doc: dict[str, Any], host: dict[str, str]) -> str:
    """The user data the program gives this node (stacks/userdata.py)."""
    from stacks.userdata import SECRET_KEYS, NodeBoot
    from stacks.userdata import node_user_data as render

    shards = json.loads(doc["clickhouse_topology"])["shards"]
    boot = NodeBoot(
        host=host["name"],
        domain=host["fqdn"].split(".", 1)[1],
        region=doc["aws_region"],
        volume_id="vol-0123456789abcdef0",
        clickhouse_version=DEFAULT_VERSION,
        secret_arns={key: doc["clickhouse_secret_arns"][key] for key in SECRET_KEYS.values()},
        tls_secret_arn=f"arn:aws:secretsmanager:{REGION}:123456789012:secret:tls-{host['name']}",
        ca_cert_pem=doc["clickhouse_ca_pem"],
    )
    return render(boot, grid_topology(len(shards), len(shards[0])))


class MotoStack:
    """Create in moto what an outputs document describes, as `pulumi up` would in AWS, beside
    another stack's resources and a replaced instance that discovery must skip."""

    def __init__(self, session: Any, doc: dict[str, Any]) -> None:
        self.session, self.doc, self.stack = session, doc, doc["stack_name"]
        self.chosen: dict[str, str] = {}  # the mocks' fake id or endpoint -> what moto chose
        self.ec2 = session.client("ec2")
        self.vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnets: dict[str, str] = {}

    def expected_outputs(self) -> dict[str, Any]:
        """`doc` as `pulumi stack output` would print it for these resources: AWS, not the
        program, picks instance ids, endpoint names and secret ARNs, so moto's replace the
        mocks' fakes; all else (names, addresses, zones, ports, shape, CA) stays as it is."""
        text = json.dumps(self.doc)
        for fake, real in self.chosen.items():
            assert fake in text, fake
            text = text.replace(fake, real)
        expected: dict[str, Any] = json.loads(text)
        return expected

    def subnet(self, ip: str, zone: str) -> str:
        cidr = f"{ip.rsplit('.', 1)[0]}.0/24"
        if cidr not in self.subnets:
            answer = self.ec2.create_subnet(VpcId=self.vpc, CidrBlock=cidr, AvailabilityZone=zone)
            self.subnets[cidr] = answer["Subnet"]["SubnetId"]
        return self.subnets[cidr]

    def instance(self, ip: str, zone: str, tags: list[dict[str, str]], user_data: bytes) -> str:
        answer = self.ec2.run_instances(
            ImageId="ami-0abc1234def567890",
            InstanceType="t4g.medium",
            MinCount=1,
            MaxCount=1,
            SubnetId=self.subnet(ip, zone),
            PrivateIpAddress=ip,
            UserData=user_data,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
        return str(answer["Instances"][0]["InstanceId"])

    def build(self) -> MotoStack:
        self.hosts()
        for stack in (self.stack, OTHER):
            self.kafka(stack)
            self.cache(stack)
            self.database(stack)
            self.load_balancer(stack)
            self.secrets(stack)
        return self

    def hosts(self) -> None:
        doc, tags = self.doc, stack_tags(self.stack)
        for role in ("app", "clickhouse"):
            for host in doc[f"{role}_hosts"]:
                named = [*tags, {"Key": "Name", "Value": host["name"]}]
                # as the stack sends it: gzipped (stacks/cloud_config.py for_ec2)
                data = (
                    base64.b64decode(for_ec2(node_user_data(doc, host)))
                    if role == "clickhouse"
                    else b"#cloud-config\n"
                )
                zone, ip = host["availability_zone"], host["private_ip"]
                iid = self.instance(ip, zone, [*named, {"Key": "Role", "Value": role}], data)
                self.chosen[host["instance_id"]] = iid
        first = doc["app_hosts"][0]
        zone, base = first["availability_zone"], first["private_ip"].rsplit(".", 1)[0]
        app = [{"Key": "Role", "Value": "app"}, {"Key": "Name", "Value": first["name"]}]
        replaced = self.instance(f"{base}.97", zone, [*stack_tags(self.stack), *app], b"")
        self.ec2.terminate_instances(InstanceIds=[replaced])
        self.instance(f"{base}.98", zone, [*stack_tags(OTHER), *app], b"")
        self.instance(f"{base}.99", zone, [*stack_tags(self.stack), app[1]], b"")  # no Role

    def kafka(self, stack: str) -> None:
        kafka = self.session.client("kafka")
        arn = kafka.create_cluster(
            ClusterName=f"adpulse-{stack}-msk-0a1b2c3",
            KafkaVersion="3.8.x",
            NumberOfBrokerNodes=3,
            BrokerNodeGroupInfo={"InstanceType": "kafka.m7g.large", "ClientSubnets": ["a", "b"]},
            ClientAuthentication={"Sasl": {"Scram": {"Enabled": True}}},
            ConfigurationInfo={
                "Arn": f"arn:aws:kafka:{REGION}:123456789012:configuration/c/1",
                "Revision": 1,
            },
            Tags={t["Key"]: t["Value"] for t in stack_tags(stack)},
        )["ClusterArn"]
        if stack == self.stack:
            doc = self.doc
            answer_what_moto_lacks(
                self.session, arn, doc["kafka_bootstrap"], doc["topic_replication_factor"]
            )

    def cache(self, stack: str) -> None:
        elasticache = self.session.client("elasticache")
        group = elasticache.create_replication_group(
            ReplicationGroupId=f"adpulse-{stack}-redis",
            ReplicationGroupDescription="adpulse API response cache",
            Engine="redis",
            CacheNodeType="cache.t4g.small",
            NumCacheClusters=2,
            Port=6379,
            TransitEncryptionEnabled=True,
            Tags=stack_tags(stack),
        )["ReplicationGroup"]
        if stack == self.stack:
            endpoint = group["NodeGroups"][0]["PrimaryEndpoint"]["Address"]
            self.chosen[str(urlsplit(self.doc["redis_url"]).hostname)] = endpoint

    def database(self, stack: str) -> None:
        rds = self.session.client("rds")
        db = rds.create_db_instance(
            DBInstanceIdentifier=f"adpulse-{stack}-pg-0a1b2c3d",
            Engine="postgres",
            DBInstanceClass="db.t4g.micro",
            AllocatedStorage=20,
            DBName=urlsplit(self.doc["postgres_url"]).path.strip("/"),
            MasterUsername="adpulse",
            ManageMasterUserPassword=True,
            Tags=stack_tags(stack),
        )["DBInstance"]
        if stack == self.stack:
            master = db["MasterUserSecret"]["SecretArn"]
            self.session.client("secretsmanager").put_secret_value(
                SecretId=master, SecretString=SECRETS["postgres-master"]
            )
            self.chosen[str(urlsplit(self.doc["postgres_url"]).hostname)] = db["Endpoint"][
                "Address"
            ]
            self.chosen[self.doc["postgres_master_secret_arn"]] = master

    def load_balancer(self, stack: str) -> None:
        elbv2 = self.session.client("elbv2")
        subnets = [self.subnet("10.0.250.1", "us-east-1a"), self.subnet("10.0.251.1", "us-east-1b")]
        alb = elbv2.create_load_balancer(
            Name=f"adpulse-{stack}-alb", Subnets=subnets, Type="application", Tags=stack_tags(stack)
        )["LoadBalancers"][0]
        group = elbv2.create_target_group(
            Name=f"adpulse-{stack}-dashboard", Protocol="HTTP", Port=3000, VpcId=self.vpc
        )["TargetGroups"][0]
        elbv2.create_listener(
            LoadBalancerArn=alb["LoadBalancerArn"],
            Protocol="HTTP",
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}],
        )
        if stack == self.stack:
            self.chosen[str(urlsplit(self.doc["dashboard_url"]).hostname)] = alb["DNSName"]

    def secrets(self, stack: str) -> None:
        """As stacks/secret_store.py, msk.py and tls.py name them: a prefix and a unique suffix."""
        client, doc = self.session.client("secretsmanager"), self.doc
        names = {f"adpulse-{stack}/{key}-": key for key in doc["clickhouse_secret_arns"]}
        names[f"AmazonMSK_adpulse-{stack}-"] = "kafka-scram"
        names |= {
            f"adpulse-{stack}/clickhouse-tls-{h['name']}-": "" for h in doc["clickhouse_hosts"]
        }
        for prefix, key in names.items():
            arn = client.create_secret(
                Name=f"{prefix}20260601120000000000000001",
                SecretString=SECRETS.get(key, "tls bundle"),
                Tags=stack_tags(stack),
            )["ARN"]
            if stack == self.stack and key == "kafka-scram":
                self.chosen[doc["kafka_scram_secret_arn"]] = arn
            elif stack == self.stack and key:
                self.chosen[doc["clickhouse_secret_arns"][key]] = arn
        if doc["cloudwatch_metrics"]:
            self.session.client("cloudwatch").put_metric_alarm(
                AlarmName=f"adpulse-{stack}-consumer-lag",
                Namespace="adpulse",
                MetricName="ConsumerLag",
                Dimensions=[
                    {"Name": "Stack", "Value": stack},
                    {"Name": "ConsumerGroup", "Value": "adpulse-ingest"},
                ],
                Statistic="Maximum",
                Period=60,
                EvaluationPeriods=5,
                Threshold=100000.0,
                ComparisonOperator="GreaterThanThreshold",
            )


@pytest.mark.parametrize("stack", STACKS)
def test_discovery_against_moto_equals_the_outputs_file(
    stack: str, moto_session: Any, tmp_path: Path
) -> None:
    built = MotoStack(moto_session, outputs(stack)).build()
    path = write(tmp_path / "outputs.json", built.expected_outputs())
    expected = with_secrets(load_outputs_file(path, stack), moto_session)
    found = discover(stack, REGION, moto_session)
    assert found == expected
    assert found.secrets == {key: SECRETS[key] for key in DEPLOY_SECRETS}
    assert all(host.instance_id.startswith("i-") for host in found.app_hosts)


def test_an_unknown_stack_is_one_line_naming_it_and_the_region(moto_session: Any) -> None:
    MotoStack(moto_session, outputs("prod")).build()
    message = one_line_error(lambda: discover("nope", REGION, moto_session))
    assert message.startswith(f"no stack 'nope' in {REGION}: no EC2 instance there is tagged")
    assert "Project=adpulse, Stack=nope" in message
    message = one_line_error(lambda: discover("prod", "eu-west-1", moto_session))
    assert message.startswith("no stack 'prod' in eu-west-1:")


@pytest.mark.parametrize(
    ("remove", "named"),
    [
        (
            lambda s: s.client("elasticache").delete_replication_group(
                ReplicationGroupId="adpulse-prod-redis"
            ),
            "has no ElastiCache replication group tagged Project=adpulse, Stack=prod",
        ),
        (
            lambda s: s.client("rds").delete_db_instance(
                DBInstanceIdentifier="adpulse-prod-pg-0a1b2c3d", SkipFinalSnapshot=True
            ),
            "has no RDS instance tagged",
        ),
        (
            lambda s: s.client("secretsmanager").delete_secret(
                SecretId="adpulse-prod/redis-auth-token-20260601120000000000000001",
                ForceDeleteWithoutRecovery=True,
            ),
            "has no secret redis-auth-token tagged",
        ),
    ],
)
def test_a_missing_part_of_the_stack_is_one_line_naming_it(
    remove: Callable[[Any], object], named: str, moto_session: Any
) -> None:
    MotoStack(moto_session, outputs("prod")).build()
    remove(moto_session)
    message = one_line_error(lambda: discover("prod", REGION, moto_session))
    assert message.startswith(f"stack 'prod' in {REGION} ") and named in message


def test_a_doubled_part_is_one_line_naming_both(moto_session: Any) -> None:
    built = MotoStack(moto_session, outputs("prod")).build()
    built.cache("prod-copy")
    moto_session.client("elasticache").add_tags_to_resource(
        ResourceName=f"arn:aws:elasticache:{REGION}:123456789012:replicationgroup:adpulse-prod-copy-redis",
        Tags=[{"Key": "Stack", "Value": "prod"}],
    )
    message = one_line_error(lambda: discover("prod", REGION, moto_session))
    assert "has 2 ElastiCache replication groups tagged" in message
    assert "adpulse-prod-redis, adpulse-prod-copy-redis" in message


def test_without_credentials_discovery_says_so(no_aws_credentials: None) -> None:
    message = one_line_error(lambda: discover("prod", REGION))
    assert "listing the EC2 instances of stack prod in us-east-1: no AWS credentials" in message
