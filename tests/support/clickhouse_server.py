"""A real ClickHouse server for native-protocol tests: Debian's clickhouse-server.

Debian ships 18.16 (2018), too old for adpulse's schema, so these tests use simple tables:
they prove the native backend's protocol, failover, locking and each role's login, not the DDL.
The passwordless `default` user stays for the tests that need no role.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{root}/log/server.log</log>
    <errorlog>{root}/log/err.log</errorlog><console>0</console></logger>
  <tcp_port>{port}</tcp_port>
  <http_port>{http_port}</http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{root}/data/</path>
  <tmp_path>{root}/tmp/</tmp_path>
  <users_config>{root}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>53687091</mark_cache_size>
</yandex>
"""
USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default>
{role_users}
  </users>
  <quotas><default></default></quotas>
</yandex>
"""
# The users of templates/clickhouse/users.xml.j2 with passwords, as a deployed server holds
# them (SHA-256 only), reduced to what 18.16 understands: no grants, no constraints.
ROLE_USER = """    <{user}><password_sha256_hex>{digest}</password_sha256_hex>
      <networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota>
    </{user}>"""
# Passwords of the fixture's role users; URL-hostile characters on purpose.
ROLE_PASSWORDS = {
    "admin": "adm1n p@ss:w/rd%41#?",
    "ingest": "ingest&p@ss:w0rd/<x>",
    "api": "api+p@ss w0rd%2F,h2:9000",
}


def _users_xml() -> str:
    users = "\n".join(
        ROLE_USER.format(user=user, digest=hashlib.sha256(password.encode()).hexdigest())
        for user, password in ROLE_PASSWORDS.items()
    )
    return USERS.format(role_users=users)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A free port below the kernel's ephemeral range, so no outgoing connection on this
    machine can be handed it as its local port (a port from `bind(0)` can, once freed, and a
    test checking "the port is free again" would then see a stranger's socket)."""
    high = _ephemeral_low()
    low = 10_000 if high > 11_000 else 1_024
    for _ in range(200):
        port = random.randrange(low, high)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}..{high} after 200 tries")


def _wait_for_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


@contextmanager
def clickhouse_server(root: Path) -> Iterator[int]:
    """Run clickhouse-server under `root` on a free port; yields the native port."""
    binary = shutil.which("clickhouse-server")
    if binary is None:
        raise RuntimeError(
            "clickhouse-server is not installed: `apt-get install clickhouse-server` "
            "(.ci/run does this)"
        )
    for sub in ("data", "tmp", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    port, http_port = free_port(), free_port()
    (root / "config.xml").write_text(CONFIG.format(root=root, port=port, http_port=http_port))
    (root / "users.xml").write_text(_users_xml())
    proc = subprocess.Popen(
        [binary, f"--config-file={root / 'config.xml'}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not _wait_for_port(port, 30):
            log = (root / "log" / "err.log").read_text() if (root / "log/err.log").exists() else ""
            raise RuntimeError(f"clickhouse-server did not listen on {port}: {log[-2000:]}")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
