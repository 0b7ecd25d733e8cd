"""Each ClickHouse node's user data: valid cloud-config, clean shell, the files `adpulse config
render` writes for that node, its macros and Keeper quorum, and no secret anywhere in it."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
import os
import shutil
import stat
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from adpulse.clickhouse.config import SECRET_ENV, ConfigOptions, render_node_configs
from adpulse.topology import Topology, three_replicas
from stacks.cluster_shape import grid_topology
from stacks.inventory import Inventory
from stacks.mocks import Mocks
from stacks.userdata import (
    BACKUP,
    ENV_FILE,
    FETCH_SECRETS,
    SECRET_KEYS,
    SETUP,
    USER_DATA_LIMIT,
    BackupPlan,
    NodeBoot,
    node_user_data,
)
from tests.stacks.conftest import SECRETS, of_type

CONFIG_FILE = "/etc/clickhouse-server/config.d/adpulse.xml"
S3_FILE = "/etc/clickhouse-server/config.d/adpulse-backups.xml"


def files_of(user_data: str) -> dict[str, str]:
    """Path -> content of every write_files entry, decoded the way cloud-init decodes it."""
    assert user_data.startswith("#cloud-config\n"), "cloud-init needs the header to parse it"
    files: dict[str, str] = {}
    for entry in yaml.safe_load(user_data)["write_files"]:
        content = entry["content"]
        if entry.get("encoding") == "gz+b64":
            content = gzip.decompress(base64.b64decode(content)).decode()
        else:
            assert "encoding" not in entry, entry["encoding"]
        files[entry["path"]] = content
    return files


def macros(user_data: str) -> dict[str, str]:
    """The node's <macros> (cluster, shard, replica), from the config file it writes."""
    root = ET.fromstring(files_of(user_data)[CONFIG_FILE])
    return {child.tag: child.text or "" for child in root.find("macros") or []}


def clickhouse_user_data(resources: list[Any]) -> dict[str, str]:
    """Host -> user data of each ClickHouse instance (Mocks records or inventory resources)."""
    return {
        r.inputs["tags"]["Name"]: r.inputs["userData"]
        for r in resources
        if r.inputs.get("tags", {}).get("Role") == "clickhouse"
    }


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
        assert len(user_data.encode()) <= USER_DATA_LIMIT


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
    """Same function, same templates, same options as `adpulse config render`."""
    for topology, host, user_data in every_node:
        written = files_of(user_data)
        rendered = render_node_configs(topology)
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
        assert root.findtext("interserver_http_host") == host
        config = yaml.safe_load(user_data)
        assert (config["hostname"], config["fqdn"]) == (host, f"{host}.adpulse.internal")
        # A 127.0.1.1 line for its own name would make Keeper refuse the raft configuration.
        assert config["manage_etc_hosts"] is False


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
        assert [n.findtext("host") for n in root.iterfind("zookeeper/node")] == list(
            topology.keeper
        ), f"{host}: clients must know every Keeper voter"
        server = root.find("keeper_server")
        if host not in topology.keeper:
            assert server is None, f"{host} is not a Keeper voter"
            continue
        assert server is not None
        raft = [(s.findtext("id"), s.findtext("hostname")) for s in server.iterfind(".//server")]
        assert raft == [(str(i), h) for i, h in enumerate(topology.keeper, start=1)]
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


def _boot(host: str = "ch-2", backup: BackupPlan | None = None, ca: str = "CA") -> NodeBoot:
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
    setup = files_of(node_user_data(_boot(), three_replicas()))[SETUP]
    assert "readonly VOLUME_SERIAL=vol0abc123\n" in setup
    assert "dev=/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_$VOLUME_SERIAL" in setup
    assert '2) mkfs."$FSTYPE" -L chdata "$dev" ;;' in setup, "mkfs only on blkid's no-signature"


def test_ten_shards_still_fit_in_ec2_user_data() -> None:
    """The config grows with the cluster; gzip keeps the largest allowed shape under 16 KiB."""
    big = grid_topology(10, 3)
    plan = BackupPlan(bucket="adpulse-prod-backups-20240101abcdef", region="us-east-1")
    text = node_user_data(_boot("ch-1", plan, ca="C" * 800), big)
    assert len(text.encode()) <= USER_DATA_LIMIT


def test_oversized_user_data_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="EC2 allows 16384"):
        node_user_data(_boot(ca=os.urandom(12_000).hex()), three_replicas())


def test_a_host_outside_the_topology_is_refused() -> None:
    with pytest.raises(ValueError, match="'ch-9' is not a host"):
        node_user_data(_boot("ch-9"), three_replicas())


# --- the scripts, run: stubbed AWS CLI and ClickHouse client, real bash and openssl ---------


def _stub(bin_dir: Path, name: str, body: str) -> None:
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


def test_fetch_secrets_writes_digests_the_cluster_secret_and_the_tls_pair(tmp_path: Path) -> None:
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", "/CN=ch-2", "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    boot = _boot()
    values = {arn: f"pw-{key_name}" for key_name, arn in boot.secret_arns.items()}
    cluster = 'c$l"u`s\\ter $(touch /tmp/pwned) secret'
    values[boot.secret_arns["clickhouse-cluster-secret"]] = cluster
    values[boot.tls_secret_arn] = key.read_text() + cert.read_text()
    (tmp_path / "values.json").write_text(json.dumps(values))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # aws ... --secret-id ARN ...: print that secret's value, as the CLI's --output text does.
    _stub(
        bin_dir,
        "aws",
        'while [ "$1" != --secret-id ]; do shift; done\n'
        "python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "
        f'{tmp_path}/values.json "$2"\n',
    )
    _stub(bin_dir, "chown", "exit 0\n")  # no `clickhouse` user here
    _stub(bin_dir, "install", 'mkdir -p "${@: -1}"\n')
    options = ConfigOptions(
        tls_cert=str(tmp_path / "tls/server.crt"), tls_key=str(tmp_path / "tls/server.key")
    )
    script = files_of(node_user_data(boot, three_replicas(), options))[FETCH_SECRETS]
    env_file = tmp_path / "run/clickhouse.env"
    script = script.replace(f"ENV_FILE={ENV_FILE}", f"ENV_FILE={env_file}")
    done = subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    env = _systemd_env(env_file.read_text())
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
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert (tmp_path / "tls/server.crt").read_text() == cert.read_text()
    written_key = (tmp_path / "tls/server.key").read_text()
    assert "PRIVATE KEY" in written_key and "CERTIFICATE" not in written_key
    assert stat.S_IMODE((tmp_path / "tls/server.key").stat().st_mode) == 0o400


def _run_backup(tmp_path: Path, listing: list[str], client_fails: bool = False) -> tuple[int, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    _stub(
        bin_dir,
        "clickhouse-client",
        f'echo "clickhouse-client $*" >>{log}\nexit {int(client_fails)}\n',
    )
    lines = "\\n".join(f"                           PRE {name}/" for name in listing)
    _stub(
        bin_dir,
        "aws",
        f'echo "aws $*" >>{log}\nif [ "$3" = s3 ] && [ "$4" = ls ]; then printf "{lines}\\n"; fi\n',
    )
    plan = BackupPlan(bucket="bk", region="us-east-1", retention_days=14)
    script = files_of(node_user_data(_boot("ch-1", plan), grid_topology(2, 2)))[BACKUP]
    done = subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, log.read_text() if log.exists() else ""


def _days_ago(days: int) -> str:
    """A backup folder name as the script makes it, `days` ago."""
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y%m%dT%H%M%SZ")


def test_backup_then_retention_deletes_only_old_backups_it_named(tmp_path: Path) -> None:
    old, recent = _days_ago(20), _days_ago(3)
    code, calls = _run_backup(tmp_path, [old, recent, "manual-keep"])
    assert code == 0
    backup = next(line for line in calls.splitlines() if line.startswith("clickhouse-client"))
    # Two shards: ON CLUSTER backs up one replica of each.
    assert (
        "BACKUP DATABASE adpulse ON CLUSTER adpulse TO S3('https://bk.s3.us-east-1.amazonaws.com/clickhouse/"
        in backup
    )
    removed = [line.split()[-1] for line in calls.splitlines() if " s3 rm " in line]
    assert removed == [f"s3://bk/clickhouse/{old}/"]


def test_a_failed_backup_deletes_nothing(tmp_path: Path) -> None:
    old = _days_ago(60)
    code, calls = _run_backup(tmp_path, [old], client_fails=True)
    assert code != 0
    assert " s3 " not in calls, "no listing, no deletion after a failed BACKUP"


# --- egress endpoints: no internet, so the AMI brings the packages -------------------------


def _offline_boot(host: str = "ch-2") -> NodeBoot:
    return dataclasses.replace(_boot(host), offline=True)


def test_offline_user_data_runs_no_apt_and_stays_valid(tmp_path: Path) -> None:
    online = yaml.safe_load(node_user_data(_boot(), three_replicas()))
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


def _run_setup(tmp_path: Path, boot: NodeBoot, installed: dict[str, str]) -> tuple[int, str, str]:
    """Run the node setup with every system command stubbed: `dpkg-query` reports `installed`
    (package -> version), every other command just logs its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    versions = "".join(f"  {pkg}) printf %s {ver} ;;\n" for pkg, ver in installed.items())
    _stub(bin_dir, "dpkg-query", f'echo "dpkg-query $*" >>{log}\ncase "${{@: -1}}" in\n'
          f'{versions}  *) exit 1 ;;\nesac\n')  # fmt: skip
    logged = ("curl", "gpg", "apt-get", "apt-mark", "dpkg", "systemctl", "mount", "mountpoint",
              "mkfs.ext4", "update-ca-certificates", "chown", "tee")  # fmt: skip
    for name in logged:
        _stub(bin_dir, name, f'echo "{name} $*" >>{log}\n' + ("cat\n" if name == "tee" else ""))
    _stub(bin_dir, "aws", "exit 0\n")
    _stub(bin_dir, "stat", "echo clickhouse\n")
    _stub(bin_dir, "blkid", 'echo "blkid $*" >>' + f"{log}\n" + '[ "$1" = -p ] || echo uuid-1\n')
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
    _stub(bin_dir, "amazon-cloudwatch-agent-ctl", "exit 0\n")
    (tmp_path / "fstab").touch()
    (tmp_path / "sources.list.d").mkdir()
    done = subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
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


def test_online_setup_installs_the_pinned_build_from_the_repository(tmp_path: Path) -> None:
    code, calls, out = _run_setup(tmp_path, _boot(), {})
    assert code == 0, out
    assert "apt-get install -y -q clickhouse-common-static=25.8.8.26" in calls
    assert calls.count("curl ") == 3, "both agents and the repository key"
