"""Per-node server and users files: snapshots, structure, Keeper, secrets, options, CLI."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from adpulse.clickhouse.config import (
    CONFIG_FILE,
    SECRET_ENV,
    USERS_FILE,
    ConfigOptions,
    render_node_configs,
    write_rendered,
)
from adpulse.errors import ConfigError
from adpulse.topology import Ports, Topology, single, three_replicas
from commands.config import config_app
from tests.clickhouse.conftest import SnapshotCheck

TOPOLOGIES = {"single": single(), "cluster": three_replicas()}
# Two shards of three replicas, Keeper on three of the six: not every node is a Keeper member.
SIX = Topology(
    cluster="adpulse",
    shards=(("a1", "a2", "a3"), ("b1", "b2", "b3")),
    keeper=("a1", "b2", "a3"),
)


def parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode())


def configs(topology: Topology) -> dict[str, ET.Element]:
    files = render_node_configs(topology)
    return {node.host: parse(files[f"{node.host}/{CONFIG_FILE}"]) for node in topology.nodes}


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_rendered_configs_match_snapshots(name: str, snapshot: SnapshotCheck) -> None:
    snapshot(render_node_configs(TOPOLOGIES[name]), f"{name}/clickhouse-config")


@pytest.mark.parametrize("topology", [single(), three_replicas(), SIX], ids=["1", "3", "6"])
def test_every_node_gets_parseable_files_and_its_own_macros(topology: Topology) -> None:
    files = render_node_configs(topology)
    assert set(files) == {
        f"{node.host}/{name}" for node in topology.nodes for name in (CONFIG_FILE, USERS_FILE)
    }
    seen = set()
    for node in topology.nodes:
        root = parse(files[f"{node.host}/{CONFIG_FILE}"])
        assert parse(files[f"{node.host}/{USERS_FILE}"]).tag == "clickhouse"
        assert root.tag == "clickhouse"
        macros = {child.tag: child.text for child in root.findall("macros/*")}
        assert macros == {"cluster": "adpulse", "shard": str(node.shard), "replica": node.host}
        assert root.findtext("interserver_http_host") == node.host
        seen.add((macros["shard"], macros["replica"]))
    assert len(seen) == len(topology.nodes)


def test_ports_tls_prometheus_and_paths_come_from_topology_and_options() -> None:
    ports = Ports(tcp=19000, tcp_secure=19440, http=18123, https=18443, interserver_http=19009)
    topology = Topology(cluster="adpulse", shards=(("db",),), ports=ports)
    options = ConfigOptions(data_dir="/data/ch/", tls_cert="/tls/c.pem", tls_key="/tls/k.pem")
    root = parse(render_node_configs(topology, options)[f"db/{CONFIG_FILE}"])
    assert root.findtext("tcp_port") == "19000"
    assert root.findtext("tcp_port_secure") == "19440"
    assert root.findtext("http_port") == "18123"
    assert root.findtext("https_port") == "18443"
    assert root.findtext("interserver_http_port") == "19009"
    assert root.findtext("openSSL/server/certificateFile") == "/tls/c.pem"
    assert root.findtext("openSSL/server/privateKeyFile") == "/tls/k.pem"
    assert root.findtext("prometheus/endpoint") == "/metrics"
    assert root.findtext("prometheus/port") == str(ports.prometheus)
    assert root.findtext("path") == "/data/ch/"
    assert root.findtext("tmp_path") == "/data/ch/tmp/"
    assert root.findtext("user_files_path") == "/data/ch/user_files/"
    assert root.findtext("format_schema_path") == "/data/ch/format_schemas/"


def test_single_node_has_one_shard_and_no_keeper_sections() -> None:
    root = configs(single())["localhost"]
    for section in ("zookeeper", "keeper_server", "distributed_ddl", "keeper_map_path_prefix"):
        assert root.find(section) is None, section
    shards = root.findall("remote_servers/adpulse/shard")
    assert len(shards) == 1
    assert [r.findtext("host") for r in shards[0].iter("replica")] == ["localhost"]
    assert root.find("remote_servers/adpulse/secret") is None


def test_cluster_lists_shards_and_replicas_with_a_secret_from_env() -> None:
    root = configs(SIX)["b1"]
    shards = root.findall("remote_servers/adpulse/shard")
    assert [[r.findtext("host") for r in s.iter("replica")] for s in shards] == [
        ["a1", "a2", "a3"],
        ["b1", "b2", "b3"],
    ]
    assert all(s.findtext("internal_replication") == "true" for s in shards)
    assert {r.findtext("port") for s in shards for r in s.iter("replica")} == {"9000"}
    secret = root.find("remote_servers/adpulse/secret")
    assert secret is not None and secret.get("from_env") == SECRET_ENV["cluster"]
    assert not (secret.text or "").strip()


def test_keeper_raft_lists_three_servers_and_only_members_serve_keeper() -> None:
    roots = configs(SIX)
    members = {"a1": 1, "b2": 2, "a3": 3}
    for host, root in roots.items():
        assert [n.findtext("host") for n in root.iter("node")] == ["a1", "b2", "a3"]
        assert {n.findtext("port") for n in root.iter("node")} == {"9181"}
        assert root.findtext("distributed_ddl/path") == "/clickhouse/task_queue/ddl"
        assert root.findtext("keeper_map_path_prefix") == "/keeper_map_tables"
        keeper = root.find("keeper_server")
        if host not in members:
            assert keeper is None, f"{host} is not a Keeper member"
            continue
        assert keeper is not None
        assert keeper.findtext("server_id") == str(members[host])
        assert keeper.findtext("tcp_port") == "9181"
        assert keeper.findtext("log_storage_path") == "/var/lib/clickhouse/coordination/log"
        servers = keeper.findall("raft_configuration/server")
        raft = {s.findtext("id"): s.findtext("hostname") for s in servers}
        assert raft == {"1": "a1", "2": "b2", "3": "a3"}
        assert {s.findtext("port") for s in servers} == {"9234"}


def test_clustered_topology_without_keeper_is_refused() -> None:
    sharded = Topology(cluster="adpulse", shards=(("a",), ("b",)))
    with pytest.raises(ConfigError, match="ON CLUSTER DDL needs Keeper"):
        render_node_configs(sharded)


def users(options: ConfigOptions | None = None) -> ET.Element:
    return parse(render_node_configs(single(), options)[f"localhost/{USERS_FILE}"])


def test_users_profiles_grants_and_quota() -> None:
    root = users(ConfigOptions(api_max_execution_time=5, quota_queries=77, database="ads"))
    ingest = root.find("profiles/ingest")
    assert ingest is not None
    assert ingest.findtext("insert_deduplicate") == "1"
    assert ingest.findtext("deduplicate_blocks_in_dependent_materialized_views") == "1"
    assert ingest.findtext("async_insert") == "0"
    api = root.find("profiles/api")
    assert api is not None
    assert api.findtext("readonly") == "1"
    assert api.findtext("max_execution_time") == "5"
    assert api.findtext("timeout_overflow_mode") == "throw"
    assert api.findtext("max_memory_usage") == "4000000000"
    assert api.findtext("max_rows_to_read") == "2000000000"
    assert api.findtext("constraints/max_execution_time/max") == "5"
    assert api.findtext("constraints/max_execution_time/min") == "1"
    interval = root.find("quotas/api/interval")
    assert interval is not None
    assert interval.findtext("duration") == "3600"
    assert interval.findtext("queries") == "77"
    for key in ("errors", "read_rows", "execution_time"):
        assert int(interval.findtext(key) or 0) > 0
    assert root.findtext("users/admin/access_management") == "1"
    assert root.findtext("users/ingest/profile") == "ingest"
    assert root.findtext("users/ingest/grants/query") == "GRANT INSERT, SELECT ON ads.*"
    assert root.findtext("users/api/profile") == "api"
    assert root.findtext("users/api/quota") == "api"
    assert root.findtext("users/api/grants/query") == "GRANT SELECT ON ads.*"


def test_users_networks_default_to_the_vpc_and_loopback() -> None:
    root = users()
    for user in ("admin", "ingest", "api"):
        ips = [ip.text for ip in root.findall(f"users/{user}/networks/ip")]
        assert ips == ["10.0.0.0/16", "::1", "127.0.0.1"], user
    assert [ip.text for ip in root.findall("users/default/networks/ip")] == ["::1", "127.0.0.1"]
    custom = users(ConfigOptions(networks=("172.31.0.0/16",)))
    assert [ip.text for ip in custom.findall("users/api/networks/ip")] == ["172.31.0.0/16"]


SECRETS = {
    "ADPULSE_CLICKHOUSE_ADMIN_PASSWORD": "admin-Very-Secret-1a2b3c",
    "ADPULSE_CLICKHOUSE_INGEST_PASSWORD": "ingest-Very-Secret-4d5e6f",
    "ADPULSE_CLICKHOUSE_API_PASSWORD": "api-Very-Secret-7a8b9c",
    "ADPULSE_POSTGRES_URL": "postgresql://u:pg-Very-Secret-0x@db/adpulse",
    "CLICKHOUSE_CLUSTER_SECRET": "cluster-Very-Secret-zz",
}


def test_no_rendered_file_holds_a_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    forbidden = set(SECRETS.values())
    forbidden |= {hashlib.sha256(v.encode()).hexdigest() for v in SECRETS.values()}
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli(), ["config", "render", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    rendered = {str(p): p.read_text() for p in (tmp_path / "out").rglob("*.xml")}
    rendered |= render_node_configs(SIX)
    assert len(rendered) == 6 + 12
    for name, text in rendered.items():
        leaked = [secret for secret in forbidden if secret in text]
        assert not leaked, f"{name} contains a secret"
        root = parse(text)
        for element in root.iter():
            if "password" in element.tag or element.tag == "secret":
                assert element.tag in ("password_sha256_hex", "secret"), f"{name}: {element.tag}"
                assert not (element.text or "").strip(), f"{name}: {element.tag} has a value"
                assert element.get("from_env") in SECRET_ENV.values()


@pytest.mark.parametrize(
    "key",
    [
        "api_max_execution_time",
        "api_max_memory_usage",
        "api_max_rows_to_read",
        "quota_queries",
        "quota_errors",
        "quota_read_rows",
        "quota_execution_time",
    ],
)
@pytest.mark.parametrize("value", [0, -1, True])
def test_non_positive_limits_are_refused_by_name(key: str, value: int) -> None:
    with pytest.raises(ConfigError, match=f"{key} must be a positive whole number"):
        ConfigOptions(**{key: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data_dir": "var/lib/clickhouse"}, "data_dir must be an absolute path"),
        ({"tls_key": "server.key"}, "tls_key must be an absolute path"),
        ({"networks": ()}, "networks is empty"),
        ({"networks": ("10.0.0.0/33",)}, "networks entry '10.0.0.0/33'"),
        ({"listen_host": "everywhere"}, "listen_host 'everywhere'"),
        ({"database": "ad-pulse"}, "database 'ad-pulse' is not a plain identifier"),
    ],
)
def test_bad_options_are_refused_by_name(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ConfigOptions(**kwargs)  # type: ignore[arg-type]


def test_write_rendered_creates_folders_and_stays_inside_out(tmp_path: Path) -> None:
    written = write_rendered({"a/b/c.xml": "<x/>", "d.sql": "SELECT 1;\n"}, tmp_path)
    assert written == [tmp_path / "a" / "b" / "c.xml", tmp_path / "d.sql"]
    assert (tmp_path / "a/b/c.xml").read_text() == "<x/>"
    with pytest.raises(ConfigError, match="outside"):
        write_rendered({"../escape.xml": ""}, tmp_path / "out")


def cli() -> typer.Typer:
    """The commands as `cli.py` registers them, without importing the whole CLI."""
    app = typer.Typer()
    app.add_typer(config_app, name="config")
    return app


def test_cli_config_render_writes_each_nodes_files(tmp_path: Path) -> None:
    out = tmp_path / "conf"
    result = CliRunner().invoke(cli(), ["config", "render", "--out", str(out)])
    assert result.exit_code == 0, result.output
    expected = [
        out / host / name for host in ("ch-1", "ch-2", "ch-3") for name in (CONFIG_FILE, USERS_FILE)
    ]
    assert result.stdout.splitlines() == [f"wrote {path}" for path in expected]
    assert all(path.is_file() for path in expected)


def test_cli_config_render_json_lists_the_files(tmp_path: Path) -> None:
    args = ["config", "render", "--topology", "single", "--out", str(tmp_path), "--json"]
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        str(tmp_path / "localhost" / CONFIG_FILE),
        str(tmp_path / "localhost" / USERS_FILE),
    ]


def test_cli_bad_topology_is_one_line_and_exit_1(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    args = ["config", "render", "--topology", str(missing), "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: topology {str(missing)!r}: not 'single', 'cluster' or an existing TOML file\n"
    )
    assert not (tmp_path / "o").exists()


def test_cli_two_keepers_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.toml"
    path.write_text('shards = [["a", "b"]]\nkeeper = ["a", "b"]\n')
    args = ["config", "render", "--topology", str(path), "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 1
    assert "Keeper quorum of an odd number >= 3 hosts, got 2" in result.stderr
    assert len(result.stderr.splitlines()) == 1
