"""Each ClickHouse node's user data: valid cloud-config, clean shell, the files `adpulse config
render` writes for that node (its nodes named by FQDN), its macros and Keeper quorum, no secret
anywhere in it; the secrets refresh that brings renewed certificates to running nodes; and agents
installed only at their pinned versions with AWS's signature."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
import os
import random
import shutil
import stat
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adpulse.clickhouse.config import SECRET_ENV, ConfigOptions, render_node_configs
from adpulse.topology import Topology, three_replicas
from stacks.agents import (
    CLICKHOUSE_REPO_KEY_FINGERPRINT,
    CW_AGENT_KEY_FINGERPRINT,
    CW_AGENT_VERSION,
    SSM_AGENT_KEY_FILE,
    SSM_AGENT_KEY_FINGERPRINT,
    SSM_AGENT_VERSION,
    dearmor,
)
from stacks.cloud_config import USER_DATA_LIMIT, ec2_size, for_ec2
from stacks.cluster_shape import grid_topology, in_domain
from stacks.inventory import Inventory
from stacks.mocks import Mocks
from stacks.node_backup import BACKUP, BackupPlan
from stacks.userdata import (
    ENV_FILE,
    FETCH_SECRETS,
    SECRET_KEYS,
    SETUP,
    NodeBoot,
    node_user_data,
)
from tests.stacks.conftest import SECRETS, of_type

CONFIG_FILE = "/etc/clickhouse-server/config.d/adpulse.xml"
S3_FILE = "/etc/clickhouse-server/config.d/adpulse-backups.xml"
DOMAIN = "adpulse.internal"  # the test stack's adpulse:internalDomain (the default)
REFRESH_SERVICE = "/etc/systemd/system/adpulse-secrets-refresh.service"
REFRESH_TIMER = "/etc/systemd/system/adpulse-secrets-refresh.timer"


def binary_files_of(user_data: str) -> dict[str, bytes]:
    """Path -> bytes of every write_files entry, decoded the way cloud-init decodes it."""
    assert user_data.startswith("#cloud-config\n"), "cloud-init needs the header to parse it"
    files: dict[str, bytes] = {}
    for entry in yaml.safe_load(user_data)["write_files"]:
        content = entry["content"]
        encoding = entry.get("encoding")
        assert encoding in (None, "gz+b64", "b64"), encoding
        if encoding == "gz+b64":
            files[entry["path"]] = gzip.decompress(base64.b64decode(content))
        elif encoding == "b64":
            files[entry["path"]] = base64.b64decode(content)
        else:
            files[entry["path"]] = content.encode()
    return files


def files_of(user_data: str) -> dict[str, str]:
    """Path -> text of every write_files entry but the binary ones (the SSM agent's key)."""
    return {
        path: data.decode()
        for path, data in binary_files_of(user_data).items()
        if path != SSM_AGENT_KEY_FILE
    }


def macros(user_data: str) -> dict[str, str]:
    """The node's <macros> (cluster, shard, replica), from the config file it writes."""
    root = ET.fromstring(files_of(user_data)[CONFIG_FILE])
    return {child.tag: child.text or "" for child in root.find("macros") or []}


def ec2_user_data(resources: list[Any]) -> dict[str, bytes]:
    """Host -> the user data EC2 receives for each ClickHouse instance: its `userDataBase64`,
    decoded (Mocks records or inventory resources)."""
    return {
        r.inputs["tags"]["Name"]: base64.b64decode(r.inputs["userDataBase64"], validate=True)
        for r in resources
        if r.inputs.get("tags", {}).get("Role") == "clickhouse"
    }


def clickhouse_user_data(resources: list[Any]) -> dict[str, str]:
    """Host -> the #cloud-config each ClickHouse instance's cloud-init reads: what EC2 receives,
    gunzipped (Mocks records or inventory resources)."""
    return {host: gzip.decompress(data).decode() for host, data in ec2_user_data(resources).items()}


@pytest.fixture(scope="module")
def session_nodes(mocks: Mocks) -> dict[str, str]:
    return clickhouse_user_data(of_type(mocks, "aws:ec2/instance:Instance"))


@pytest.fixture(scope="module")
def grid_nodes(two_by_two_inventory: Inventory) -> dict[str, str]:
    return clickhouse_user_data(two_by_two_inventory.of_type("aws:ec2/instance:Instance"))


@pytest.fixture(scope="module")
def every_node(
    session_nodes: dict[str, str], grid_nodes: dict[str, str]
) -> list[tuple[Topology, str, str]]:
    """(topology, host, user data) for the 1x3 session stack and the 2x2 one."""
    assert list(session_nodes) == ["ch-1", "ch-2", "ch-3"]
    assert list(grid_nodes) == ["ch-1", "ch-2", "ch-3", "ch-4"]
    return [(three_replicas(), h, u) for h, u in session_nodes.items()] + [
        (grid_topology(2, 2), h, u) for h, u in grid_nodes.items()
    ]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/system-deps.sh")
    return path


def test_every_node_passes_cloud_init_schema(
    every_node: list[tuple[Topology, str, str]], tmp_path: Path
) -> None:
    cloud_init = _tool("cloud-init")
    for _, host, user_data in every_node:
        path = tmp_path / f"{host}.yaml"
        path.write_text(user_data)
        done = subprocess.run(
            [cloud_init, "schema", "--config-file", str(path)], capture_output=True, text=True
        )
        assert done.returncode == 0, f"{host}: {done.stdout}{done.stderr}"
        assert ec2_size(for_ec2(user_data)) <= USER_DATA_LIMIT


def test_every_script_passes_shellcheck(every_node: list[tuple[Topology, str, str]]) -> None:
    shellcheck = _tool("shellcheck")
    checked = set()
    for _, host, user_data in every_node:
        for path, content in files_of(user_data).items():
            if content.startswith("#!"):
                done = subprocess.run(
                    [shellcheck, "--severity=style", "-"],
                    input=content,
                    capture_output=True,
                    text=True,
                )
                assert done.returncode == 0, f"{host}:{path}\n{done.stdout}"
                checked.add(path)
    assert checked == {SETUP, FETCH_SECRETS, BACKUP}


def test_nodes_write_exactly_what_config_render_writes(
    every_node: list[tuple[Topology, str, str]],
) -> None:
    """Same function, same templates, same options as `adpulse config render`, with the topology
    in the stack's domain (a topology file with `domain = "adpulse.internal"`)."""
    for topology, host, user_data in every_node:
        written = files_of(user_data)
        rendered = render_node_configs(in_domain(topology, DOMAIN))
        mine = {
            k.removeprefix(f"{host}/"): v for k, v in rendered.items() if k.startswith(f"{host}/")
        }
        assert mine, f"render_node_configs has no files for {host}"
        for relative, text in mine.items():
            assert written[f"/etc/clickhouse-server/{relative}"] == text, f"{host}: {relative}"


def test_each_node_carries_its_own_macros_and_replica_name(
    every_node: list[tuple[Topology, str, str]],
) -> None:
    for topology, host, user_data in every_node:
        node = next(n for n in topology.nodes if n.host == host)
        assert macros(user_data) == {
            "cluster": topology.cluster,
            "shard": str(node.shard),
            "replica": host,
        }
        root = ET.fromstring(files_of(user_data)[CONFIG_FILE])
        assert root.findtext("interserver_http_host") == f"{host}.{DOMAIN}"
        config = yaml.safe_load(user_data)
        assert (config["hostname"], config["fqdn"]) == (host, f"{host}.{DOMAIN}")
        # A 127.0.1.1 line for its own name would make Keeper refuse the raft configuration.
        assert config["manage_etc_hosts"] is False


def test_nodes_name_each_other_by_fqdn(every_node: list[tuple[Topology, str, str]]) -> None:
    """No name a node's config gives another node relies on the DHCP search domain."""
    for topology, host, user_data in every_node:
        root = ET.fromstring(files_of(user_data)[CONFIG_FILE])
        replicas = [r.findtext("host") for r in root.iterfind("remote_servers/*/shard/replica")]
        assert replicas == [f"{h}.{DOMAIN}" for h in topology.hosts], host
        named = [
            e.text or ""
            for e in root.iter()
            if e.tag in ("host", "hostname", "interserver_http_host")
        ]
        assert named and all(name.endswith(f".{DOMAIN}") for name in named), named


def test_a_topology_in_another_domain_is_refused() -> None:
    with pytest.raises(ValueError, match=r"differs from the nodes' domain 'adpulse\.internal'"):
        node_user_data(make_boot(), dataclasses.replace(three_replicas(), domain="other.internal"))
    same = dataclasses.replace(three_replicas(), domain=DOMAIN)
    assert node_user_data(make_boot(), same) == node_user_data(make_boot(), three_replicas())


def test_2x2_nodes_are_two_shards_of_two_replicas(grid_nodes: dict[str, str]) -> None:
    assert {h: (m["shard"], m["replica"]) for h, m in map_macros(grid_nodes).items()} == {
        "ch-1": ("1", "ch-1"),
        "ch-2": ("1", "ch-2"),
        "ch-3": ("2", "ch-3"),
        "ch-4": ("2", "ch-4"),
    }


def map_macros(nodes: dict[str, str]) -> dict[str, dict[str, str]]:
    return {host: macros(user_data) for host, user_data in nodes.items()}


def test_keeper_quorum_lists_every_keeper_node(
    every_node: list[tuple[Topology, str, str]],
) -> None:
    for topology, host, user_data in every_node:
        root = ET.fromstring(files_of(user_data)[CONFIG_FILE])
        fqdns = [f"{keeper}.{DOMAIN}" for keeper in topology.keeper]
        assert [n.findtext("host") for n in root.iterfind("zookeeper/node")] == fqdns, (
            f"{host}: clients must know every Keeper voter, by FQDN"
        )
        server = root.find("keeper_server")
        if host not in topology.keeper:
            assert server is None, f"{host} is not a Keeper voter"
            continue
        assert server is not None
        raft = [(s.findtext("id"), s.findtext("hostname")) for s in server.iterfind(".//server")]
        assert raft == [(str(i), h) for i, h in enumerate(fqdns, start=1)]
        assert server.findtext("server_id") == str(topology.keeper.index(host) + 1)
    assert len(grid_topology(2, 2).keeper) == 3, "four nodes still vote with three"


def test_no_secret_value_reaches_any_user_data(
    every_node: list[tuple[Topology, str, str]], two_by_two_inventory: Inventory
) -> None:
    """Neither the configured passwords, nor generated ones, nor any TLS private key."""
    secrets = set(SECRETS.values()) | set(two_by_two_inventory.secret_values)
    assert any("PRIVATE KEY" in s for s in secrets), "the TLS keys are among the secrets"
    for _, host, user_data in every_node:
        texts = [user_data, *files_of(user_data).values()]
        for text in texts:
            assert "PRIVATE KEY" not in text, f"{host}: a private key in user data"
            for secret in secrets:
                assert secret not in text, f"{host}: a secret value in user data"


def test_every_node_fetches_its_own_tls_secret_and_every_password(
    session_nodes: dict[str, str], mocks: Mocks
) -> None:
    arns = {r.name: str(r.outputs["arn"]) for r in mocks.resources}
    tls = {host: arns[f"adpulse-tls-{host}-secret"] for host in session_nodes}
    passwords = {key: arns[f"adpulse-{key}"] for key in SECRET_KEYS.values()}
    for host, user_data in session_nodes.items():
        script = files_of(user_data)[FETCH_SECRETS]
        assert f"readonly TLS_SECRET={tls[host]}\n" in script
        others = [arn for h, arn in tls.items() if h != host]
        assert not any(arn in script for arn in others), f"{host} reads another node's key"
        for arn in passwords.values():
            assert f"value=$(secret {arn})" in script


def test_the_backup_timer_runs_on_one_replica_only(
    session_nodes: dict[str, str], grid_nodes: dict[str, str]
) -> None:
    timers = [h for h, u in session_nodes.items() if BACKUP in files_of(u)]
    assert timers == ["ch-1"]
    # One shard: only the backup replica touches S3. ON CLUSTER (2 shards): every node writes
    # its part, so every node has the S3 settings.
    assert [h for h, u in session_nodes.items() if S3_FILE in files_of(u)] == ["ch-1"]
    for host, user_data in {"ch-1": session_nodes["ch-1"], **grid_nodes}.items():
        s3 = ET.fromstring(files_of(user_data)[S3_FILE]).find("s3/adpulse_backups")
        assert s3 is not None and s3.findtext("use_environment_credentials") == "true", host
        assert s3.findtext("endpoint", "").endswith(".s3.us-east-1.amazonaws.com/clickhouse/")
    files = files_of(session_nodes["ch-1"])
    assert "systemctl enable --now adpulse-backup.timer" in files[SETUP]
    assert "OnCalendar=*-*-* 03:00:00 UTC" in files["/etc/systemd/system/adpulse-backup.timer"]


def test_setup_installs_the_pinned_version_and_holds_it(session_nodes: dict[str, str]) -> None:
    setup = files_of(session_nodes["ch-2"])[SETUP]
    assert "readonly CLICKHOUSE_VERSION=25.8.8.26\n" in setup
    for package in ("clickhouse-common-static", "clickhouse-server", "clickhouse-client"):
        assert f'"{package}=$CLICKHOUSE_VERSION"' in setup
    assert "apt-mark hold clickhouse-common-static clickhouse-server clickhouse-client" in setup


def make_boot(host: str = "ch-2", backup: BackupPlan | None = None, ca: str = "CA") -> NodeBoot:
    return NodeBoot(
        host=host,
        domain="adpulse.internal",
        region="us-east-1",
        volume_id="vol-0abc123",
        clickhouse_version="25.8.8.26",
        secret_arns={
            key: f"arn:aws:secretsmanager:us-east-1:1:secret:{key}" for key in SECRET_KEYS.values()
        },
        tls_secret_arn=f"arn:aws:secretsmanager:us-east-1:1:secret:tls-{host}",
        ca_cert_pem=ca,
        backup=backup,
    )


def test_the_volume_is_found_by_its_serial_and_formatted_only_when_blank() -> None:
    setup = files_of(node_user_data(make_boot(), three_replicas()))[SETUP]
    assert "readonly VOLUME_SERIAL=vol0abc123\n" in setup
    assert "dev=/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_$VOLUME_SERIAL" in setup
    assert '2) mkfs."$FSTYPE" -L chdata "$dev" ;;' in setup, "mkfs only on blkid's no-signature"


def _realistic_ca() -> str:
    """A CA certificate's size and randomness (base64 of DER does not compress much)."""
    der = base64.b64encode(random.Random(12).randbytes(420)).decode()
    lines = [der[i : i + 64] for i in range(0, len(der), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def test_the_largest_shape_fits_ec2_because_the_limit_is_on_the_gzipped_size() -> None:
    """10 shards x 3 replicas, on the node with the most files (backups, Keeper): its document is
    larger than EC2's 16 KiB, what EC2 receives (gzipped) is well within it."""
    big = grid_topology(10, 3)
    plan = BackupPlan(bucket="adpulse-prod-backups-20240101abcdef", region="us-east-1")
    text = node_user_data(make_boot("ch-1", plan, ca=_realistic_ca()), big)
    assert len(text.encode()) > USER_DATA_LIMIT
    assert ec2_size(for_ec2(text)) <= USER_DATA_LIMIT * 3 // 4, "room for larger templates"


def test_oversized_user_data_is_refused_with_the_reason() -> None:
    """Random hex hardly compresses: 24,000 characters of it overflow even gzipped."""
    with pytest.raises(ValueError, match=r"is \d+ bytes gzipped \(\d+ before\); EC2 allows 16384"):
        node_user_data(make_boot(ca=os.urandom(12_000).hex()), three_replicas())


def test_ec2_gets_each_nodes_user_data_gzipped_and_cloud_init_reads_it_back(
    mocks: Mocks, two_by_two_inventory: Inventory, tmp_path: Path
) -> None:
    """`userDataBase64` only (plain `userData` would count uncompressed against the limit): a gzip
    stream within EC2's 16 KiB that cloud-init's own reader (`cloud-init query`, as on the node)
    turns back into the #cloud-config the other tests validate."""
    instances = of_type(mocks, "aws:ec2/instance:Instance")
    nodes = [r for r in instances if r.inputs["tags"].get("Role") == "clickhouse"]
    assert nodes and not any("userData" in r.inputs for r in nodes)
    grid = two_by_two_inventory.of_type("aws:ec2/instance:Instance")
    received = {**ec2_user_data(nodes), **{f"2x2 {h}": d for h, d in ec2_user_data(grid).items()}}
    assert len(received) == 7
    (tmp_path / "instance-data.json").write_text("{}")
    (tmp_path / "vendor-data").write_text("")
    for host, data in received.items():
        assert data[:2] == b"\x1f\x8b", f"{host}: not gzip"
        assert len(data) <= USER_DATA_LIMIT, f"{host}: {len(data)} bytes"
        (tmp_path / "user-data").write_bytes(data)
        done = subprocess.run(
            [_tool("cloud-init"), "query", "-i", str(tmp_path / "instance-data.json"),
             "-u", str(tmp_path / "user-data"), "-v", str(tmp_path / "vendor-data"), "userdata"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout == gzip.decompress(data).decode() + "\n", host
        header = f"#cloud-config\n# adpulse ClickHouse node {host.split()[-1]} of "
        assert done.stdout.startswith(header), host


def test_a_host_outside_the_topology_is_refused() -> None:
    with pytest.raises(ValueError, match="'ch-9' is not a host"):
        node_user_data(make_boot("ch-9"), three_replicas())


# --- the scripts, run: stubbed AWS CLI and ClickHouse client, real bash and openssl ---------


def stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _systemd_env(text: str) -> dict[str, str]:
    """KEY="value" lines as systemd's EnvironmentFile reads them: inside double quotes a
    backslash escapes \\ " ` and $, and an unescaped " ends the value."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, _, raw = line.partition("=")
        assert raw.startswith('"'), line
        out: list[str] = []
        chars = iter(raw[1:])
        for c in chars:
            if c == "\\":
                nxt = next(chars)
                out.append(nxt if nxt in '"\\`$' else "\\" + nxt)
            elif c == '"':
                assert next(chars, None) is None, f"the quote closes early: {line}"
                break
            else:
                out.append(c)
        else:
            raise AssertionError(f"unterminated quote: {line}")
        values[key] = "".join(out)
    return values


def _key_and_cert(tmp_path: Path, name: str) -> str:
    """A fresh P-256 key and self-signed certificate for ch-2, as the TLS secret holds them."""
    key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", "/CN=ch-2", "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return key.read_text() + cert.read_text()


class FetchNode:
    """adpulse-fetch-secrets on a fake node: real bash and openssl; `aws` answers from a dict of
    ARN -> value, `systemctl is-active` says whether ClickHouse runs, and `clickhouse-client`,
    `systemctl` and `aws` log their arguments to `log`."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path
        self.boot = make_boot()
        self.values = {arn: f"pw-{key}" for key, arn in self.boot.secret_arns.items()}
        self.values[self.boot.tls_secret_arn] = _key_and_cert(tmp_path, "first")
        self.env_file = tmp_path / "run/clickhouse.env"
        self.key, self.cert = tmp_path / "tls/server.key", tmp_path / "tls/server.crt"
        self.log = tmp_path / "calls.log"
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        log = self.log
        stub(self.bin, "aws", f'echo "aws $*" >>{log}\n'
             'while [ "$1" != --secret-id ]; do shift; done\n'
             "python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "
             f'{tmp_path}/values.json "$2"\n')  # fmt: skip
        stub(self.bin, "chown", "exit 0\n")  # no `clickhouse` user here
        stub(self.bin, "install", 'mkdir -p "${@: -1}"\n')
        stub(self.bin, "systemctl", f'echo "systemctl $*" >>{log}\n'
             f'[ "$1" = is-active ] && [ -e {tmp_path}/active ]\n')  # fmt: skip
        self.client_exit = 0
        options = ConfigOptions(tls_cert=str(self.cert), tls_key=str(self.key))
        script = files_of(node_user_data(self.boot, three_replicas(), options))[FETCH_SECRETS]
        self.script = script.replace(f"ENV_FILE={ENV_FILE}", f"ENV_FILE={self.env_file}")

    def run(self, *, active: bool) -> subprocess.CompletedProcess[str]:
        (self.root / "values.json").write_text(json.dumps(self.values))
        (self.root / "active").unlink(missing_ok=True)
        if active:
            (self.root / "active").touch()
        stub(self.bin, "clickhouse-client",
             f'echo "clickhouse-client $*" >>{self.log}\nexit {self.client_exit}\n')  # fmt: skip
        self.log.unlink(missing_ok=True)
        return subprocess.run(
            ["bash", "-c", self.script],
            env={**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}"},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def reloads(self) -> list[str]:
        return [line for line in self.calls() if line.startswith("clickhouse-client")]

    def assert_no_secret_leaked(self, done: subprocess.CompletedProcess[str]) -> None:
        """No value in any process's arguments (the stubs log them) or in the output."""
        shown = "\n".join([done.stdout, done.stderr, *self.calls()])
        for value in self.values.values():
            for line in value.splitlines():
                if "-----" not in line:
                    assert line not in shown, "a secret reached an argument or the log"


def test_fetch_secrets_writes_digests_the_cluster_secret_and_the_tls_pair(tmp_path: Path) -> None:
    node = FetchNode(tmp_path)
    cluster = 'c$l"u`s\\ter $(touch /tmp/pwned) secret'
    node.values[node.boot.secret_arns["clickhouse-cluster-secret"]] = cluster
    done = node.run(active=False)
    assert done.returncode == 0, done.stderr
    env = _systemd_env(node.env_file.read_text())
    digest = {
        role: hashlib.sha256(f"pw-{SECRET_KEYS[role]}".encode()).hexdigest()
        for role in ("admin", "ingest", "api")
    }
    assert env == {
        SECRET_ENV["admin"]: digest["admin"],
        SECRET_ENV["ingest"]: digest["ingest"],
        SECRET_ENV["api"]: digest["api"],
        SECRET_ENV["cluster"]: cluster,
    }
    assert stat.S_IMODE(node.env_file.stat().st_mode) == 0o600
    bundle = node.values[node.boot.tls_secret_arn]
    assert node.cert.read_text() in bundle and "PRIVATE KEY" not in node.cert.read_text()
    written_key = node.key.read_text()
    assert "PRIVATE KEY" in written_key and "CERTIFICATE" not in written_key
    assert stat.S_IMODE(node.key.stat().st_mode) == 0o400
    assert stat.S_IMODE(node.cert.stat().st_mode) == 0o444
    assert node.reloads() == [], "at boot the server is not running yet: nothing to reload"
    node.assert_no_secret_leaked(done)


def test_a_renewed_certificate_replaces_the_files_atomically_and_reloads_clickhouse(
    tmp_path: Path,
) -> None:
    node = FetchNode(tmp_path)
    assert node.run(active=False).returncode == 0
    before = {path: path.stat() for path in (node.key, node.cert, node.env_file)}

    # The daily refresh with nothing new: no file touched, nothing reloaded.
    done = node.run(active=True)
    assert done.returncode == 0, done.stderr
    assert node.reloads() == []
    for path, was in before.items():
        now = path.stat()
        assert (now.st_ino, now.st_mtime_ns) == (was.st_ino, was.st_mtime_ns), path

    # `pulumi up` renewed the certificate (a new pair in the secret): renamed in, reloaded once.
    renewed = _key_and_cert(tmp_path, "renewed")
    node.values[node.boot.tls_secret_arn] = renewed
    done = node.run(active=True)
    assert done.returncode == 0, done.stderr
    for path in (node.key, node.cert):
        assert path.stat().st_ino != before[path].st_ino, f"{path} was rewritten, not renamed in"
    assert node.cert.read_text() in renewed and node.key.read_text() != ""
    assert stat.S_IMODE(node.key.stat().st_mode) == 0o400
    assert stat.S_IMODE(node.cert.stat().st_mode) == 0o444
    assert sorted(p.name for p in node.key.parent.iterdir()) == ["server.crt", "server.key"]
    assert node.reloads() == [
        "clickhouse-client --host 127.0.0.1 --port 9000 --query SYSTEM RELOAD CONFIG"
    ]
    assert "TLS certificate replaced and reloaded: notAfter=" in done.stdout
    assert not any("restart" in line for line in node.calls()), "a renewal restarts nothing"
    node.assert_no_secret_leaked(done)


def test_a_refused_reload_fails_the_refresh(tmp_path: Path) -> None:
    node = FetchNode(tmp_path)
    assert node.run(active=False).returncode == 0
    node.values[node.boot.tls_secret_arn] = _key_and_cert(tmp_path, "renewed")
    node.client_exit = 1
    assert node.run(active=True).returncode != 0, "systemctl --failed must show it"


def test_a_rotated_password_is_written_and_applies_at_the_next_restart(tmp_path: Path) -> None:
    node = FetchNode(tmp_path)
    assert node.run(active=False).returncode == 0
    node.values[node.boot.secret_arns["clickhouse-ingest-password"]] = "rotated-Zq81"
    done = node.run(active=True)
    assert done.returncode == 0, done.stderr
    assert "apply when clickhouse-server restarts" in done.stdout
    digest = hashlib.sha256(b"rotated-Zq81").hexdigest()
    assert _systemd_env(node.env_file.read_text())[SECRET_ENV["ingest"]] == digest
    assert node.reloads() == [], "the certificate did not change"
    assert not any("restart" in line for line in node.calls())
    node.assert_no_secret_leaked(done)


def test_the_refresh_timer_runs_the_fetch_daily_on_every_node(
    every_node: list[tuple[Topology, str, str]],
) -> None:
    for _, host, user_data in every_node:
        files = files_of(user_data)
        service = files[REFRESH_SERVICE]
        assert f"ExecStart={FETCH_SECRETS}\n" in service and "Type=oneshot" in service, host
        assert "After=network-online.target adpulse-secrets.service" in service
        timer = files[REFRESH_TIMER]
        assert "OnCalendar=daily\n" in timer, host
        assert "RandomizedDelaySec=4h\n" in timer, "replicas reload at different times"
        assert "WantedBy=timers.target" in timer
        assert "systemctl enable --now adpulse-secrets-refresh.timer" in files[SETUP], host


# --- egress endpoints: no internet, so the AMI brings the packages -------------------------


def _offline_boot(host: str = "ch-2") -> NodeBoot:
    return dataclasses.replace(make_boot(host), offline=True)


def test_offline_user_data_runs_no_apt_and_stays_valid(tmp_path: Path) -> None:
    online = yaml.safe_load(node_user_data(make_boot(), three_replicas()))
    assert online["package_update"] is True and "awscli" in online["packages"]
    text = node_user_data(_offline_boot(), three_replicas())
    config = yaml.safe_load(text)
    assert "packages" not in config and "package_update" not in config
    assert "readonly OFFLINE=true\n" in files_of(text)[SETUP]
    path = tmp_path / "offline.yaml"
    path.write_text(text)
    done = subprocess.run(
        [_tool("cloud-init"), "schema", "--config-file", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run(
        [_tool("shellcheck"), "--severity=style", "-"],
        input=files_of(text)[SETUP],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout


REGIONAL_CW = "https://amazoncloudwatch-agent-us-east-1.s3.us-east-1.amazonaws.com"
SSM_DEB = (
    "https://s3.us-east-1.amazonaws.com/amazon-ssm-us-east-1/"
    f"{SSM_AGENT_VERSION}/debian_arm64/amazon-ssm-agent.deb"
)
CW_DEB = f"{REGIONAL_CW}/debian/arm64/{CW_AGENT_VERSION}/amazon-cloudwatch-agent.deb"
CW_KEY = f"{REGIONAL_CW}/assets/amazon-cloudwatch-agent.gpg"
CW_KEY_DOCUMENTED = (
    "https://amazoncloudwatch-agent.s3.amazonaws.com/assets/amazon-cloudwatch-agent.gpg"
)
CLICKHOUSE_KEY = "https://packages.clickhouse.com/rpm/lts/repodata/repomd.xml.key"


class Signer:
    """A throwaway GnuPG home with two signing keys: `aws` stands in for AWS's keys (the tests
    pin its fingerprint instead of AWS's), `mallory` for anyone else's."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.aws = self._new_key("Fake AWS <aws@example.invalid>")
        self.mallory = self._new_key("Mallory <mallory@example.invalid>")

    def _gpg(self, *args: str, data: bytes = b"") -> bytes:
        done = subprocess.run(
            ["gpg", "--homedir", str(self.home), "--batch", "--yes", *args],
            input=data, capture_output=True, check=True,
        )  # fmt: skip
        return done.stdout

    def _new_key(self, uid: str) -> str:
        self._gpg("--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
        listing = self._gpg("--with-colons", "--list-keys", uid).decode()
        return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr"))

    def sign(self, fingerprint: str, data: bytes) -> bytes:
        return self._gpg("--local-user", fingerprint, "--detach-sign", "-o", "-", data=data)

    def public(self, *fingerprints: str) -> bytes:
        return self._gpg("--armor", "--export", *fingerprints)


@pytest.fixture(scope="module")
def signer() -> Iterator[Signer]:
    # A short path: gpg-agent's socket lives in the home, and socket paths are short.
    home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    try:
        yield Signer(home)
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
        shutil.rmtree(home, ignore_errors=True)


def agent_mirror(signer: Signer) -> dict[str, bytes]:
    """URL -> body of everything the setup downloads, both agents signed by the `aws` key."""
    ssm, cw = b"ssm agent package", b"cloudwatch agent package"
    return {
        SSM_DEB: ssm,
        f"{SSM_DEB}.sig": signer.sign(signer.aws, ssm),
        CW_DEB: cw,
        f"{CW_DEB}.sig": signer.sign(signer.aws, cw),
        CW_KEY: signer.public(signer.aws),
        # ClickHouse's repository key: the test's stand-in for it is the `aws` key, pinned in
        # its place by _run_setup (the real one is ClickHouse's, which signs nothing here)
        CLICKHOUSE_KEY: signer.public(signer.aws),
    }


def _run_setup(
    tmp_path: Path,
    boot: NodeBoot,
    installed: dict[str, str],
    signer: Signer | None = None,
    served: dict[str, bytes] | None = None,
) -> tuple[int, str, str]:
    """Run the node setup with the system commands stubbed: `dpkg-query` reports `installed`
    (package -> version), `curl` serves `served` (URL -> body; any other URL fails), `gpg`
    and `gpgv` are real, and the `signer`'s `aws` key replaces AWS's pinned keys. Every other
    command just logs its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    versions = "".join(f"  {pkg}) printf %s {ver} ;;\n" for pkg, ver in installed.items())
    stub(bin_dir, "dpkg-query", f'echo "dpkg-query $*" >>{log}\ncase "${{@: -1}}" in\n'
          f'{versions}  *) exit 1 ;;\nesac\n')  # fmt: skip
    logged = ("apt-get", "apt-mark", "dpkg", "systemctl", "mount", "mountpoint",
              "mkfs.ext4", "update-ca-certificates", "chown", "tee")  # fmt: skip
    for name in logged:
        stub(bin_dir, name, f'echo "{name} $*" >>{log}\n' + ("cat\n" if name == "tee" else ""))
    stub(bin_dir, "gpg", f'echo "gpg $*" >>{log}\nexec {_tool("gpg")} "$@"\n')
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for n, (url, body) in enumerate((served or {}).items()):
        (mirror / str(n)).write_bytes(body)
        (mirror / f"{n}.url").write_text(url)
    stub(bin_dir, "curl", f'echo "curl $*" >>{log}\nout=""; url=""\n'
         'while [ $# -gt 0 ]; do case $1 in -o) out=$2; shift 2 ;; -*) shift ;; '
         '*) url=$1; shift ;; esac; done\n'
         f'for f in {mirror}/*.url; do\n'
         '  [ -e "$f" ] && [ "$(cat "$f")" = "$url" ] || continue\n'
         '  if [ -n "$out" ]; then cp "${f%.url}" "$out"; else cat "${f%.url}"; fi; exit 0\n'
         'done\nexit 22\n')  # fmt: skip
    stub(bin_dir, "aws", "exit 0\n")
    stub(bin_dir, "stat", "echo clickhouse\n")
    stub(bin_dir, "blkid", 'echo "blkid $*" >>' + f"{log}\n" + '[ "$1" = -p ] || echo uuid-1\n')
    script = files_of(node_user_data(boot, three_replicas()))[SETUP]
    device = tmp_path / "nvme"
    device.touch()
    script = script.replace(
        "dev=/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_$VOLUME_SERIAL", f"dev={device}"
    )
    # Nothing may land in this machine's /etc.
    script = script.replace("/etc/apt/", f"{tmp_path}/").replace(
        "/usr/share/keyrings/", f"{tmp_path}/"
    )
    script = script.replace("/etc/fstab", f"{tmp_path}/fstab")
    script = script.replace(
        "readonly DATA_DIR=/var/lib/clickhouse", f"readonly DATA_DIR={tmp_path}/data"
    )
    script = script.replace("/opt/aws/amazon-cloudwatch-agent/bin/", "")
    if signer is not None:
        ssm_key = tmp_path / "amazon-ssm-agent.gpg"
        ssm_key.write_bytes(signer.public(signer.aws))
        for pinned, mine in (
            (f"SSM_FPR={SSM_AGENT_KEY_FINGERPRINT}", f"SSM_FPR={signer.aws}"),
            (f"CW_FPR={CW_AGENT_KEY_FINGERPRINT}", f"CW_FPR={signer.aws}"),
            (f"SSM_KEY={SSM_AGENT_KEY_FILE}", f"SSM_KEY={ssm_key}"),
            (f"CH_FPR={CLICKHOUSE_REPO_KEY_FINGERPRINT}", f"CH_FPR={signer.aws}"),
        ):
            assert pinned in script
            script = script.replace(pinned, mine)
    stub(bin_dir, "amazon-cloudwatch-agent-ctl", "exit 0\n")
    (tmp_path / "fstab").touch()
    (tmp_path / "sources.list.d").mkdir()
    gnupg = tmp_path / "gnupg"
    gnupg.mkdir(mode=0o700)
    done = subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "GNUPGHOME": str(gnupg)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, log.read_text() if log.exists() else "", done.stdout + done.stderr


AMI_PACKAGES = {"amazon-ssm-agent": "3.3.0", "amazon-cloudwatch-agent": "1.300"}


def test_setup_skips_the_repository_when_the_pinned_build_is_installed(tmp_path: Path) -> None:
    pinned = {"clickhouse-server": "25.8.8.26", "clickhouse-client": "25.8.8.26"}
    code, calls, out = _run_setup(tmp_path, _offline_boot(), {**AMI_PACKAGES, **pinned})
    assert code == 0, out
    assert "already installed" in out
    for command in ("curl ", "gpg ", "apt-get ", "dpkg -i"):
        assert command not in calls, f"offline and installed, yet it ran {command}"
    assert "apt-mark hold clickhouse-common-static clickhouse-server clickhouse-client" in calls
    assert "systemctl restart adpulse-secrets.service clickhouse-server.service" in calls


def test_offline_setup_without_the_pinned_build_fails_saying_what_the_ami_needs(
    tmp_path: Path,
) -> None:
    other = {"clickhouse-server": "24.3.1.1", "clickhouse-client": "24.3.1.1"}
    code, calls, out = _run_setup(tmp_path, _offline_boot(), {**AMI_PACKAGES, **other})
    assert code == 1
    assert (
        "the AMI must have clickhouse-server/clickhouse-client 25.8.8.26, awscli and the SSM "
        "and CloudWatch agents preinstalled" in " ".join(out.split())
    )
    assert "apt-get" not in calls and "curl" not in calls
    assert "clickhouse-server.service" not in calls, "nothing starts after the failure"


def test_online_setup_installs_the_pinned_build_from_the_repository(
    tmp_path: Path, signer: Signer
) -> None:
    code, calls, out = _run_setup(tmp_path, make_boot(), {}, signer, agent_mirror(signer))
    assert code == 0, out
    assert "apt-get install -y -q clickhouse-common-static=25.8.8.26" in calls
    assert calls.count("curl ") == 6, "each agent, its signature, CloudWatch's key, ClickHouse's"


# --- the agents: pinned versions, installed only with AWS's signature ----------------------


def test_a_substituted_clickhouse_repository_key_stops_the_install(
    tmp_path: Path, signer: Signer
) -> None:
    """apt gets only the key of the pinned fingerprint: a different key at the URL leaves its
    keyring empty, and the setup stops before apt-get ever reads the repository."""
    served = agent_mirror(signer)
    served[CLICKHOUSE_KEY] = signer.public(signer.mallory)
    code, calls, out = _run_setup(tmp_path, make_boot(), {}, signer, served)
    assert code == 1
    assert f"the ClickHouse repository key is not {signer.aws}; not installing" in out
    assert "apt-get update" not in calls and "clickhouse-server.service" not in calls


def test_the_clickhouse_repository_key_is_pinned_by_full_fingerprint() -> None:
    setup = files_of(node_user_data(make_boot(), three_replicas()))[SETUP]
    assert f"readonly CH_FPR={CLICKHOUSE_REPO_KEY_FINGERPRINT}\n" in setup
    assert len(CLICKHOUSE_REPO_KEY_FINGERPRINT) == 40
    assert "gpg --dearmor" not in setup, "a dearmor trusts whatever the URL serves"


def test_agents_come_from_pinned_versions_never_latest() -> None:
    setup = files_of(node_user_data(make_boot(), three_replicas()))[SETUP]
    assert "/latest/" not in setup
    assert f"readonly SSM_VERSION={SSM_AGENT_VERSION}\n" in setup
    assert f"readonly CW_VERSION={CW_AGENT_VERSION}\n" in setup
    assert f"readonly SSM_FPR={SSM_AGENT_KEY_FINGERPRINT}\n" in setup
    assert f"readonly CW_FPR={CW_AGENT_KEY_FINGERPRINT}\n" in setup


def test_the_ssm_agent_key_shipped_is_the_one_pinned(tmp_path: Path) -> None:
    """The key cloud-init writes is the repository's copy, dearmored exactly as gpg does, and has
    the pinned fingerprint (the one AWS's documentation lists)."""
    shipped = binary_files_of(node_user_data(make_boot(), three_replicas()))[SSM_AGENT_KEY_FILE]
    asc = Path("templates/cloud-init/amazon-ssm-agent.asc").read_text()

    def gpg(*args: str, data: bytes) -> bytes:
        command = [_tool("gpg"), "--homedir", str(tmp_path), "--batch", "--no-autostart", *args]
        return subprocess.run(command, input=data, capture_output=True, check=True).stdout

    assert shipped == dearmor(asc) == gpg("--dearmor", data=asc.encode())
    listing = gpg("--show-keys", "--with-colons", data=shipped).decode()
    fingerprints = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr")]
    assert fingerprints == [SSM_AGENT_KEY_FINGERPRINT]


def test_dearmor_refuses_what_is_not_an_armored_key() -> None:
    with pytest.raises(ValueError, match="no -----BEGIN PGP line"):
        dearmor("mQINBGohhG8BEACx")
    with pytest.raises(ValueError, match="base64 is damaged"):
        dearmor("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQ!!\n-----END PGP PUBLIC KEY BLOCK-----")


def test_agents_signed_by_the_pinned_keys_are_installed(tmp_path: Path, signer: Signer) -> None:
    code, calls, out = _run_setup(tmp_path, make_boot(), {}, signer, agent_mirror(signer))
    assert code == 0, out
    (install,) = [line for line in calls.splitlines() if line.startswith("dpkg -i")]
    assert "/cw.deb" in install and "/ssm.deb" in install
    # Each verified package's sha256 is in the log, to pin by hash later.
    assert hashlib.sha256(b"ssm agent package").hexdigest() in out
    assert "systemctl enable --now amazon-ssm-agent" in calls


def test_a_tampered_agent_is_not_installed(tmp_path: Path, signer: Signer) -> None:
    served = agent_mirror(signer)
    served[SSM_DEB] = b"ssm agent package, with a backdoor"
    code, calls, out = _run_setup(tmp_path, make_boot(), {}, signer, served)
    assert code == 1
    assert f"SSM agent {SSM_AGENT_VERSION}: no good signature by key {signer.aws}" in out
    assert "dpkg -i" not in calls and "clickhouse-server.service" not in calls


def test_a_signature_by_any_other_key_is_refused(tmp_path: Path, signer: Signer) -> None:
    """The downloaded key file may hold more keys than the pinned one (here: the attacker's
    too); only the pinned key counts, so the attacker's signature does not verify."""
    served = agent_mirror(signer)
    served[f"{CW_DEB}.sig"] = signer.sign(signer.mallory, served[CW_DEB])
    served[CW_KEY] = signer.public(signer.aws, signer.mallory)
    code, calls, out = _run_setup(tmp_path, make_boot(), {}, signer, served)
    assert code == 1
    assert f"CloudWatch agent {CW_AGENT_VERSION}: no good signature by key {signer.aws}" in out
    assert "dpkg -i" not in calls


def test_the_cloudwatch_key_falls_back_to_the_documented_url(
    tmp_path: Path, signer: Signer
) -> None:
    served = agent_mirror(signer)
    served[CW_KEY_DOCUMENTED] = served.pop(CW_KEY)
    code, calls, out = _run_setup(tmp_path, make_boot(), {}, signer, served)
    assert code == 0, out
    curls = [line.split()[-1] for line in calls.splitlines() if line.startswith("curl ")]
    tried = [url for url in curls if url.endswith("/amazon-cloudwatch-agent.gpg")]
    assert tried == [CW_KEY, CW_KEY_DOCUMENTED], "the regional copy first, then the documented"
