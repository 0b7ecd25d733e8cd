"""Which ports `adpulse up` needs, and who holds one that is taken.

`adpulse up` never reuses a listener it did not start: an old broker left by an earlier run
would feed the new consumer its stale events. A taken port stops the start with one line that
names the port, the process holding it and the setting that moves it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from adpulse.errors import ConfigError

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


@dataclass(frozen=True)
class Port:
    what: str  # "Kafka broker", "API", ...
    port: int
    setting: str  # the variable that moves it


def is_taken(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on host:port (a bind test, not a connect)."""
    with socket.socket() as sock:
        # As servers bind: connections in TIME_WAIT from an earlier run do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def holder(port: int, proc: Path = Path("/proc")) -> str | None:
    """'pid 1234 (tansu broker --listener-url …)' for the process listening on `port`, if
    this system shows it (Linux /proc, and the process is ours or we are root)."""
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return None
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            fds = list((pid_dir / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return f"pid {pid_dir.name} ({_command_line(pid_dir)})"
    return None


def ensure_free(ports: list[Port], host: str = "127.0.0.1") -> None:
    """Raise a one-line ConfigError for the first port in `ports` that is taken."""
    for port in ports:
        if port.port and is_taken(port.port, host):
            who = holder(port.port) or "a process this user cannot see"
            raise ConfigError(
                f"port {port.port} ({port.what}) on {host} is taken by {who}; stop it, or set "
                f"{port.setting} to a free port"
            )


def _listening_inodes(port: int, proc: Path) -> set[str]:
    found: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN:
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    found.add(fields[9])
    return found


def _command_line(pid_dir: Path) -> str:
    try:
        raw = (pid_dir / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [w.decode(errors="replace") for w in raw if w]
    if words:
        words[0] = os.path.basename(words[0])
    text = " ".join(words)
    return text if len(text) <= 80 else text[:77] + "..."
