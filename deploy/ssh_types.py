"""Shared by the deploy.ssh modules: targets, access, results, errors, known_hosts and keys."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from adpulse.errors import AdpulseError

if TYPE_CHECKING:
    import paramiko

CONNECT_TIMEOUT_S = 10.0
STATE_DIR = Path(".adpulse")


class SshError(AdpulseError):
    """A host could not be reached, trusted or logged into; the message says what to do."""


class RemoteError(AdpulseError):
    """A command on a host exited non-zero; carries its exit code and output."""

    def __init__(
        self,
        host: str,
        command: str,
        code: int,
        stdout: str,
        stderr: str,
        *,
        what: str | None = None,
    ) -> None:
        tail = (stderr or stdout).strip().splitlines()[-5:]
        super().__init__(
            f"{host}: `{command}` {what or f'exited {code}'}"
            + (": " + " | ".join(tail) if tail else "")
        )
        self.host, self.command, self.code, self.stdout, self.stderr = (
            host,
            command,
            code,
            stdout,
            stderr,
        )


@dataclass(frozen=True)
class Target:
    name: str  # for people: ch-1, app-2
    address: str  # IP or DNS name
    port: int = 22
    user: str = "admin"  # Debian's AMI user; commands run through `sudo -n` unless root
    instance_id: str | None = None  # EC2: what an SSM proxy command's `%i` stands for


@dataclass(frozen=True)
class Access:
    """How this deploy reaches the stack's hosts; one object the commands pass to `open_host`.

    `proxy_command` (run locally, like OpenSSH's ProxyCommand) carries the first hop: the jump
    host when there is one, else the host itself. In it `%h` is the host's address, `%p` its
    port, `%r` the login user, `%n` its name, `%i` its EC2 instance id, `%%` a `%`. SSM:
    `aws ssm start-session --target %i --document-name AWS-StartSSHSession
    --parameters portNumber=%p`."""

    user: str = "admin"
    key_file: Path | None = None  # None: the keys in ssh-agent
    jump: Target | None = None  # a bastion, logged into with the same key
    proxy_command: str | None = None
    state_dir: Path = STATE_DIR  # where known_hosts/<stack> is


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


def known_hosts_path(stack: str, state_dir: Path = STATE_DIR) -> Path:
    return state_dir / "known_hosts" / stack


def fingerprint(key: paramiko.PKey) -> str:
    """`SHA256:...`, as `ssh-keygen -lf` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
