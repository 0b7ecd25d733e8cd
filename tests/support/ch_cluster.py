"""A real replicated ClickHouse cluster on three test hosts, for `config apply` (#14).

Debian 12's own packages, the only ClickHouse server this machine kind can install: clickhouse-
server 18.16 on each host, one shard of three replicas, over a ZooKeeper 3.8 ensemble on the same
hosts (port 2181, in place of the embedded Keeper 18.16 lacks). The nodes run the files
`render_node_configs` renders, reduced by exactly one element: `<secret from_env=...>` of
`remote_servers` (ClickHouse 20.10+), which 18.16 refuses on every config reload ("Unknown
element in config: secret"), `SYSTEM RELOAD CONFIG` included. Everything else loads as rendered
(18.16 ignores `keeper_server`, `prometheus` and `keeper_map_path_prefix`, reads `from_env`).
Two things production's node setup provides are made here: the TLS certificate and key the
rendered `openSSL` names, and `dhparam.pem`, which 18.16's stock config.xml names.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adpulse.clickhouse.config import ConfigOptions, render_node_configs
from adpulse.topology import Ports, Topology
from deploy.ssh import Target
from tests.support.hosts import Host, boot_hosts, skip_unless_possible, with_packages

PACKAGES = with_packages("clickhouse-server", "clickhouse-client", "zookeeperd")
ZOOKEEPER_PORT = 2181
TABLE = "default.events"
_SECRET_ELEMENT = re.compile(r"^\s*<secret from_env=\"[A-Z_]+\"/>\n", re.MULTILINE)
ZOO_CFG = """tickTime=2000
initLimit=10
syncLimit=5
dataDir=/var/lib/zookeeper
clientPort={port}
4lw.commands.whitelist=mntr,ruok,srvr
{servers}
"""
READY_TIMEOUT = 180.0


def reduce_for_18_16(text: str) -> str:
    """A rendered file as 18.16 loads it: without remote_servers' `<secret>`."""
    return _SECRET_ELEMENT.sub("", text)


@dataclass
class ChCluster:
    hosts: list[Host]
    topology: Topology
    admin_password: str
    known_hosts: Path

    @property
    def targets(self) -> dict[str, Target]:
        return {h.name: Target(h.name, h.ip, user="root") for h in self.hosts}

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def rendered(
        self, options: ConfigOptions | None = None, topology: Topology | None = None
    ) -> dict[str, str]:
        files = render_node_configs(topology or self.topology, options or base_options())
        return {path: reduce_for_18_16(text) for path, text in files.items()}

    def query(self, host: Host, sql: str) -> str:
        """`sql` as the node's passwordless `default` user (loopback only), the output."""
        done = host.ssh(f"clickhouse-client --query {_quote(sql)}", timeout=60)
        if done.returncode != 0:
            raise AssertionError(f"{host.name}: {sql}: {done.stderr.strip()}")
        return done.stdout.strip()

    def uptime(self, host: Host) -> int:
        return int(self.query(host, "SELECT uptime()"))


def base_options() -> ConfigOptions:
    """The rendered defaults but for `networks`: loopback only, so that a reload which admits
    the bridge shows from the test process. (18.16 matches any IPv4 client against an IPv4 CIDR
    such as the default 10.0.0.0/16: it reads the prefix as one of the IPv6-mapped address.)"""
    return ConfigOptions(networks=("::1", "127.0.0.1"))


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _put(host: Host, path: str, data: bytes, mode: str = "0644", owner: str = "root") -> None:
    encoded = base64.b64encode(data).decode()
    script = (
        f"set -e; mkdir -p $(dirname {path}); echo {encoded} | base64 -d > {path}.tmp; "
        f"chmod {mode} {path}.tmp; chown {owner} {path}.tmp; mv {path}.tmp {path}"
    )
    _must(host, script)


def _must(host: Host, command: str, timeout: float = 120.0) -> str:
    done = host.ssh(command, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"{host.name}: {command[:80]}: {done.stderr.strip()[-400:]}")
    return done.stdout


def _certificate(names: list[str]) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def _setup_host(host: Host, index: int, hosts: list[Host], env: bytes) -> None:
    others = "".join(f"{h.ip} {h.name}\n" for h in hosts if h is not host)
    _must(host, f"printf '%s' {_quote(others)} >> /etc/hosts")
    servers = "\n".join(f"server.{i}={h.name}:2888:3888" for i, h in enumerate(hosts, 1))
    zoo = ZOO_CFG.format(port=ZOOKEEPER_PORT, servers=servers).encode()
    _put(host, "/etc/zookeeper/conf/zoo.cfg", zoo)
    _put(host, "/etc/zookeeper/conf/myid", f"{index}\n".encode())
    _must(host, "echo 'JAVA_OPTS=\"-Xmx256m\"' >> /etc/zookeeper/conf/environment")
    cert, key = _certificate([host.name])
    _put(host, "/etc/clickhouse-server/tls/server.crt", cert, owner="clickhouse")
    _put(host, "/etc/clickhouse-server/tls/server.key", key, "0600", "clickhouse")
    _must(
        host,
        "openssl genpkey -genparam -algorithm DH -pkeyopt dh_param:ffdhe2048 "
        "-out /etc/clickhouse-server/dhparam.pem",
    )
    # As production's drop-in (templates/cloud-init/clickhouse-server.conf.j2): the password
    # digests the rendered users file names (from_env) come from a root-only file.
    _put(host, "/etc/adpulse-test/clickhouse.env", env, "0600")
    dropin = b"[Service]\nEnvironmentFile=/etc/adpulse-test/clickhouse.env\n"
    _put(host, "/etc/systemd/system/clickhouse-server.service.d/adpulse.conf", dropin)
    _must(host, "systemctl daemon-reload && systemctl restart zookeeper")


def install(cluster: ChCluster, rendered: Mapping[str, str]) -> None:
    """The test's own setup: write `rendered` on every node and restart each server."""
    for host in cluster.hosts:
        for path, text in rendered.items():
            if path.startswith(f"{host.name}/"):
                relative = path.removeprefix(f"{host.name}/")
                _put(host, f"/etc/clickhouse-server/{relative}", text.encode())
        _must(host, "systemctl restart clickhouse-server")


def wait_until(what: str, check: Callable[[], bool], timeout: float = READY_TIMEOUT) -> None:
    """Poll `check` each second until it holds; AssertionError naming `what` past `timeout`."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except AssertionError as error:
            last = error
        time.sleep(1)
    raise AssertionError(f"{what} not within {timeout:.0f} s; last: {last}")


def answers(cluster: ChCluster, host: Host, sql: str, expected: str) -> bool:
    return cluster.query(host, sql) == expected


def boot_cluster(known_hosts: Path) -> Iterator[ChCluster]:
    """Three hosts with ZooKeeper and ClickHouse up, the rendered configs installed and a
    replicated table on every node; the hosts are removed after."""
    with boot_hosts(3, packages=PACKAGES) as hosts:
        known_hosts.write_text("".join(h.known_hosts_line + "\n" for h in hosts))
        names = tuple(h.name for h in hosts)
        topology = Topology(
            cluster="adpulse",
            shards=(names,),
            keeper=names,
            ports=dataclasses.replace(Ports(), keeper=ZOOKEEPER_PORT),
        )
        password = secrets.token_hex(16)
        digest = hashlib.sha256(password.encode()).hexdigest()
        others = hashlib.sha256(secrets.token_bytes(16)).hexdigest()
        env = (
            f"CLICKHOUSE_ADMIN_PASSWORD_SHA256={digest}\n"
            f"CLICKHOUSE_INGEST_PASSWORD_SHA256={others}\n"
            f"CLICKHOUSE_API_PASSWORD_SHA256={others}\n"
            f"CLICKHOUSE_CLUSTER_SECRET={secrets.token_hex(16)}\n"
        ).encode()
        cluster = ChCluster(hosts, topology, password, known_hosts)
        for index, host in enumerate(hosts, start=1):
            _setup_host(host, index, hosts, env)
        install(cluster, cluster.rendered())
        for host in hosts:
            wait_until(f"{host.name} answering", partial(answers, cluster, host, "SELECT 1", "1"))
        create = (
            f"CREATE TABLE IF NOT EXISTS {TABLE} (id UInt64) ENGINE = "
            "ReplicatedMergeTree('/clickhouse/tables/{shard}/events', '{replica}') ORDER BY id"
        )
        for host in hosts:  # the first CREATE waits for ZooKeeper's quorum
            wait_until(f"{TABLE} on {host.name}", partial(answers, cluster, host, create, ""))
        yield cluster


@pytest.fixture(scope="module")
def ch_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChCluster]:
    """The replicated 18.16 cluster, shared by a test module."""
    skip_unless_possible()
    yield from boot_cluster(tmp_path_factory.mktemp("ch-cluster") / "known_hosts")
