"""One ClickHouse node as `config apply` reaches it: over SSH, with its own clickhouse-client.

The client logs in with the config file `CLIENT_CONFIG` (root 0600, on tmpfs), which
deploy/config_apply.py writes over the SSH channel's stdin and removes after: the password is
never in a command line. Keeper is asked `mntr` on the node's loopback (bash's /dev/tcp: no
extra tool on the node). Before its files are written, the node keeps a copy of each as it is
(`keep`) in root's own directory `PREVIOUS`, from which `restore` puts them back: a config the
server refuses never stays on the node, and when even the restore fails the copies are there to
put back by hand.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Sequence
from pathlib import PurePosixPath

from deploy.config_plan import Replica, mntr_state
from deploy.layout import DEPLOY_STATE_DIR
from deploy.ssh import Connection, RemoteError

SERVICE = "clickhouse-server"
CONFIG_ROOT = PurePosixPath("/etc/clickhouse-server")  # stacks/userdata.py CONFIG_DIR
CLIENT_CONFIG = PurePosixPath("/run/adpulse/config-apply-client.xml")
# The files as they were before this apply wrote them, at their paths under CONFIG_ROOT; a
# written file without a copy here did not exist. Root's 0700 directory, not the services'.
PREVIOUS = DEPLOY_STATE_DIR / "config-apply-previous"
_KEEP = (
    'set -e; umask 077; b={b}; rm -rf -- "$b"; mkdir -p -- "$b"; cd {root}; '
    'for f in "$@"; do if [ -e "$f" ]; then mkdir -p -- "$b/$(dirname -- "$f")"; '
    'cp -p -- "$f" "$b/$f"; sync -- "$b/$f"; echo "$f"; fi; done'
)
# `kept:<path>` back from its copy, atomically (a hidden copy beside it, renamed over it);
# `new:<path>` removed. A missing copy fails the restore: it never turns into a removal.
_RESTORE = (
    "set -e; b={b}; cd {root}; "
    'for a in "$@"; do f="${{a#*:}}"; case "$a" in '
    'kept:*) t="$(dirname -- "$f")/.$(basename -- "$f").prev"; '
    'cp -p -- "$b/$f" "$t"; sync -- "$t"; mv -f -- "$t" "$f";; '
    '*) rm -f -- "$f";; esac; done'
)
_QUOTED = {"b": shlex.quote(str(PREVIOUS)), "root": shlex.quote(str(CONFIG_ROOT))}
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

    def keep(self, paths: Sequence[str]) -> frozenset[str]:
        """Copy each of `paths` (under CONFIG_ROOT) as it is now into PREVIOUS, with its mode,
        owner and times, what an earlier apply kept there removed first; returns the paths
        that were there to copy (the others are new)."""
        done = self.conn.run(["sh", "-c", _KEEP.format(**_QUOTED), "sh", *paths], timeout=60)
        return frozenset(done.stdout.splitlines())

    def restore(self, paths: Sequence[str], kept: frozenset[str]) -> None:
        """Put each of `paths` back as `keep` found it: those in `kept` from their copies, the
        others removed. RemoteError, with the rest not done, when a copy is missing."""
        args = [f"kept:{p}" if p in kept else f"new:{p}" for p in paths]
        self.conn.run(["sh", "-c", _RESTORE.format(**_QUOTED), "sh", *args], timeout=60)

    def forget(self) -> None:
        """Remove the copies `keep` made; a failure leaves them for the next `keep` to replace."""
        self.conn.run(["rm", "-rf", "--", str(PREVIOUS)], check=False, timeout=60)

    def restart(self, timeout: float) -> None:
        """`systemctl restart` the server (a unit that failed too often to start may again)."""
        self.conn.run(["systemctl", "reset-failed", SERVICE], check=False, timeout=30)
        self.conn.run(["systemctl", "restart", SERVICE], timeout=timeout)

    def stopped(self) -> str | None:
        """`ActiveState/SubState` of the server's unit when its process is gone (failed,
        inactive, or waiting out RestartSec=), else None: it runs or is starting."""
        command = ["systemctl", "show", SERVICE, "-p", "ActiveState", "-p", "SubState"]
        out = self.conn.run(command, check=False, timeout=30).stdout
        props = {key: value for key, _, value in (line.partition("=") for line in out.split())}
        active, sub = props.get("ActiveState", ""), props.get("SubState", "")
        gone = active in ("failed", "inactive") or sub == "auto-restart"
        return f"{active}/{sub}" if gone else None

    def journal(self) -> str:
        done = self.conn.run(["journalctl", "-u", SERVICE, "-n", "15", "--no-pager"], check=False)
        return " | ".join(done.stdout.strip().splitlines()[-15:])
