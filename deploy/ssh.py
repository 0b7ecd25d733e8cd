"""SSH to the stack's hosts: strict host keys, a key file or the agent, an optional jump host.

Every connection checks the host key against the stack's own known_hosts file
(`.adpulse/known_hosts/<stack>`); a host that is not in it is refused with the command that adds it
(`adpulse deploy trust`), and a changed key is refused with both fingerprints. Nothing secret ever
goes into a command line: `run(..., stdin=...)` and `put(...)` carry it on the channel, so it is
never in `ps` output or the remote shell's history.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adpulse.errors import AdpulseError

if TYPE_CHECKING:
    import paramiko

CONNECT_TIMEOUT_S = 10.0
STATE_DIR = Path(".adpulse")


class SshError(AdpulseError):
    """A host could not be reached, trusted or logged into; the message says what to do."""


class RemoteError(AdpulseError):
    """A command on a host exited non-zero; carries its exit code and output."""

    def __init__(self, host: str, command: str, code: int, stdout: str, stderr: str) -> None:
        tail = (stderr or stdout).strip().splitlines()[-5:]
        super().__init__(
            f"{host}: `{command}` exited {code}" + (": " + " | ".join(tail) if tail else "")
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


def _host_id(target: Target) -> str:
    return target.address if target.port == 22 else f"[{target.address}]:{target.port}"


class Connection:
    """One logged-in session to a host; use `connect(...)` as a context manager."""

    def __init__(self, target: Target, client: paramiko.SSHClient, jump: Any = None) -> None:
        self.target = target
        self._client = client
        self._jump = jump

    def _wrap(self, command: str) -> str:
        return command if self.target.user == "root" else f"sudo -n sh -c {shlex.quote(command)}"

    def run(
        self,
        command: str | Sequence[str],
        stdin: bytes | None = None,
        check: bool = True,
        timeout: float = 300.0,
    ) -> Result:
        """Run a command as root on the host; `stdin` is how a secret travels."""
        text = command if isinstance(command, str) else shlex.join(command)
        chan = self._client.get_transport().open_session(timeout=CONNECT_TIMEOUT_S)
        chan.settimeout(timeout)
        chan.exec_command(self._wrap(text))
        if stdin is not None:
            chan.sendall(stdin)
        chan.shutdown_write()
        out, err = bytearray(), bytearray()
        # The exit status can arrive before the last output: read until the channel's EOF *and*
        # the status are both in, then take whatever is still buffered.
        while not (chan.eof_received and chan.exit_status_ready()):
            if chan.recv_ready():
                out += chan.recv(65536)
            elif chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            else:
                time.sleep(0.005)
        while chan.recv_ready():
            out += chan.recv(65536)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        code = chan.recv_exit_status()
        chan.close()
        result = Result(code, out.decode(errors="replace"), err.decode(errors="replace"))
        if check and code != 0:
            raise RemoteError(self.target.name, text, code, result.stdout, result.stderr)
        return result

    def put(self, path: str, data: bytes, mode: int = 0o644, owner: str = "root:root") -> None:
        """Write `data` to `path` atomically (a temporary file in the same folder, then rename),
        with its mode and owner set before it appears; the content travels on stdin."""
        folder = str(Path(path).parent)
        script = (
            f"set -e; umask 077; mkdir -p {shlex.quote(folder)}; "
            f"tmp=$(mktemp {shlex.quote(path)}.XXXXXX); trap 'rm -f \"$tmp\"' EXIT; "
            f'cat > "$tmp"; chown {shlex.quote(owner)} "$tmp"; chmod {mode:o} "$tmp"; '
            f'mv -f "$tmp" {shlex.quote(path)}; trap - EXIT'
        )
        self.run(script, stdin=data)

    def close(self) -> None:
        self._client.close()
        if self._jump is not None:
            self._jump.close()


def _client(known_hosts: Path) -> paramiko.SSHClient:
    import paramiko

    client = paramiko.SSHClient()
    if known_hosts.exists():
        client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return client


def load_key(path: Path) -> paramiko.PKey:
    """A private key file of any type paramiko reads (OpenSSH or PEM; Ed25519, ECDSA, RSA)."""
    import paramiko

    try:
        return paramiko.PKey.from_path(path)
    except paramiko.PasswordRequiredException:
        raise SshError(
            f"the SSH key {path} is protected by a passphrase: add it to ssh-agent "
            f"(`ssh-add {path}`) and leave out --ssh-key"
        ) from None
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise SshError(f"cannot read the SSH key {path}: {exc}") from None


def _open(
    target: Target, stack: str, known_hosts: Path, key_file: Path | None, sock: Any = None
) -> paramiko.SSHClient:
    import paramiko

    client = _client(known_hosts)
    pkey = load_key(key_file) if key_file else None
    try:
        client.connect(
            target.address,
            port=target.port,
            username=target.user,
            pkey=pkey,
            allow_agent=key_file is None,
            look_for_keys=False,
            timeout=CONNECT_TIMEOUT_S,
            banner_timeout=CONNECT_TIMEOUT_S,
            auth_timeout=CONNECT_TIMEOUT_S,
            sock=sock,
        )
    except paramiko.BadHostKeyException as exc:
        raise SshError(
            f"{target.name} ({target.address}) offered host key {fingerprint(exc.key)}, but the "
            f"stack's known_hosts ({known_hosts}) has {fingerprint(exc.expected_key)}: refused. If "
            "the host was replaced, check the new fingerprint in its console output (EC2: Get "
            f"system log), then run `adpulse deploy trust --stack {stack} --host {target.name}`"
        ) from None
    except paramiko.AuthenticationException:
        who = f"the key {key_file}" if key_file else "the keys in your ssh-agent"
        raise SshError(
            f"{target.name} ({target.address}) refused {who} for user {target.user}: give the "
            "stack's key with --ssh-key (or add it to ssh-agent), and check --ssh-user"
        ) from None
    except paramiko.SSHException as exc:
        if "not found in known_hosts" in str(exc):
            raise SshError(
                f"{target.name} ({target.address}) is not in the stack's known_hosts "
                f"({known_hosts}): run `adpulse deploy trust --stack {stack}` and compare the "
                "fingerprints it prints with the hosts' console output"
            ) from None
        raise SshError(f"{target.name} ({target.address}): SSH failed: {exc}") from None
    except OSError as exc:  # refused, unreachable, timed out (TimeoutError is an OSError)
        # paramiko wraps refusals in NoValidConnectionsError, one OSError per address tried
        inner = list(getattr(exc, "errors", {}).values())
        first = inner[0] if inner else exc
        reason = first.strerror or str(first) or type(first).__name__
        raise SshError(
            f"cannot reach {target.name} at {target.address}:{target.port} ({reason}): check that "
            "the host is running and that the security group (or the bastion) lets you in"
        ) from None
    return client


@contextmanager
def connect(
    target: Target,
    stack: str,
    known_hosts: Path,
    key_file: Path | None = None,
    jump: Target | None = None,
) -> Iterator[Connection]:
    """A session to `target`, through `jump` when given (both checked against known_hosts)."""
    import paramiko

    bastion = None
    sock = None
    if jump is not None:
        bastion = _open(jump, stack, known_hosts, key_file)
        transport = bastion.get_transport()
        assert transport is not None
        try:
            sock = transport.open_channel(
                "direct-tcpip",
                (target.address, target.port),
                ("127.0.0.1", 0),
                timeout=CONNECT_TIMEOUT_S,
            )
        except (paramiko.SSHException, OSError) as exc:  # ChannelException is an SSHException
            bastion.close()
            raise SshError(
                f"the bastion {jump.name} cannot reach {target.name} at "
                f"{target.address}:{target.port} ({exc})"
            ) from None
    try:
        client = _open(target, stack, known_hosts, key_file, sock=sock)
    except SshError:
        if bastion is not None:
            bastion.close()
        raise
    conn = Connection(target, client, bastion)
    try:
        yield conn
    finally:
        conn.close()


def scan(target: Target) -> list[tuple[str, paramiko.PKey]]:
    """The host keys `target` offers (key type, key), read without trusting them."""
    import logging

    import paramiko

    # A host without a key of one type ends that probe with an error paramiko logs at ERROR
    # with a traceback; that is the expected answer here, not a problem to show.
    quiet = logging.getLogger("paramiko.transport")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        return _scan(target, paramiko)
    finally:
        quiet.setLevel(level)


def _scan(target: Target, paramiko: Any) -> list[tuple[str, paramiko.PKey]]:
    found = []
    for kind in ("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512"):
        try:
            sock = socket.create_connection((target.address, target.port), CONNECT_TIMEOUT_S)
        except OSError as exc:
            raise SshError(
                f"cannot reach {target.name} at {target.address}:{target.port} "
                f"({exc.strerror}): is the host running?"
            ) from None
        transport = paramiko.Transport(sock)
        try:
            transport.get_security_options().key_types = [kind]
            transport.start_client(timeout=CONNECT_TIMEOUT_S)
            key = transport.get_remote_server_key()
            found.append((key.get_name(), key))
        except paramiko.SSHException:
            pass  # the host has no key of this type
        finally:
            transport.close()
    return found


def trust(targets: Sequence[Target], known_hosts: Path) -> list[tuple[Target, str, str]]:
    """Record the host keys of `targets` in known_hosts (0600), replacing old keys of the same
    hosts; returns (target, key type, fingerprint) for the caller to show."""
    import paramiko

    keys = paramiko.HostKeys()
    if known_hosts.exists():
        keys.load(str(known_hosts))
    shown = []
    for target in targets:
        host = _host_id(target)
        if host in keys:
            del keys[host]
        for kind, key in scan(target):
            keys.add(host, kind, key)
            shown.append((target, kind, fingerprint(key)))
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    tmp = known_hosts.with_suffix(".tmp")
    keys.save(str(tmp))
    tmp.chmod(0o600)
    tmp.replace(known_hosts)
    return shown
