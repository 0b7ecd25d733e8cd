"""One ClickHouse node as `config apply` reaches it: over SSH, with its own clickhouse-client.

The client logs in with the config file `CLIENT_CONFIG` (root 0600, on tmpfs), which
deploy/config_apply.py writes over the SSH channel's stdin and removes after: the password is
never in a command line. Keeper is asked `mntr` on the node's loopback (bash's /dev/tcp: no
extra tool on the node).
"""

from __future__ import annotations

import base64
from pathlib import PurePosixPath

from deploy.config_plan import Replica, mntr_state
from deploy.ssh import Connection, RemoteError

SERVICE = "clickhouse-server"
CONFIG_ROOT = PurePosixPath("/etc/clickhouse-server")  # stacks/userdata.py CONFIG_DIR
CLIENT_CONFIG = PurePosixPath("/run/adpulse/config-apply-client.xml")
_REPLICAS = "SELECT database || '.' || table, absolute_delay, is_readonly FROM system.replicas"


class Node:
    """One ClickHouse node reached over SSH; queries go through its own clickhouse-client."""

    def __init__(self, host: str, conn: Connection, port: int) -> None:
        self.host, self.conn, self.port = host, conn, port

    def query(self, sql: str, check: bool = True) -> str:
        command = ["clickhouse-client", "--config-file", str(CLIENT_CONFIG)]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--query", sql]
        return self.conn.run(command, check=check, timeout=60).stdout

    def answers(self) -> bool:
        try:
            return self.query("SELECT 1").strip() == "1"
        except RemoteError:
            return False

    def replicas(self) -> list[Replica]:
        rows = [line.split("\t") for line in self.query(_REPLICAS).splitlines() if line]
        return [Replica(r[0], float(r[1]), r[2] == "1") for r in rows]

    def keeper_state(self, port: int) -> str | None:
        probe = f"exec 3<>/dev/tcp/127.0.0.1/{port} && printf mntr >&3 && timeout 5 cat <&3"
        return mntr_state(self.conn.run(["bash", "-c", probe], check=False, timeout=30).stdout)

    def read(self, paths: list[str]) -> dict[str, str | None]:
        """Each file's text, None for one the node lacks."""
        script = (
            'for f in "$@"; do if [ -f "$f" ]; then echo present; base64 -w0 < "$f"; echo; '
            "else printf 'absent\\n\\n'; fi; done"
        )
        full = [str(CONFIG_ROOT / p) for p in paths]
        lines = self.conn.run(["sh", "-c", script, "sh", *full]).stdout.split("\n")
        return {
            path: base64.b64decode(lines[2 * i + 1]).decode() if lines[2 * i] == "present" else None
            for i, path in enumerate(paths)
        }

    def journal(self) -> str:
        done = self.conn.run(["journalctl", "-u", SERVICE, "-n", "15", "--no-pager"], check=False)
        return " | ".join(done.stdout.strip().splitlines()[-15:])
