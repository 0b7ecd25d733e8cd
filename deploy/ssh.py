"""SSH to the stack's hosts: strict host keys, a key file or the agent, a jump host or a
ProxyCommand (SSM).

Every connection checks the host key against the stack's own known_hosts file
(`.adpulse/known_hosts/<stack>`); a host that is not in it is refused with the command that adds it
(`adpulse deploy trust`), and a changed key is refused with both fingerprints. Nothing secret ever
goes into a command line: `run(..., stdin=...)` and `put(...)` carry it on the channel, so it is
never in `ps` output or the remote shell's history.

Commands pass one `Access` (user, key, jump host, proxy command, state dir) to `open_host`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import re
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from adpulse.errors import AdpulseError

if TYPE_CHECKING:
    import paramiko

CONNECT_TIMEOUT_S = 10.0
_QUIET = logging.NullHandler()
STATE_DIR = Path(".adpulse")
# A command that outlives its timeout is abandoned by us at once and stopped by the host's own
# `timeout` this much later (TERM, then KILL after as long again), so nothing keeps running.
KILL_GRACE_S = 5.0
UPLOAD_STALL_S = 60.0  # an upload whose host acknowledges nothing for this long has failed
# The host's OpenSSH sftp-server, run as root by a login user other than root (Debian and
# Ubuntu put it in the first place, Amazon Linux and RHEL in the second).
_SFTP_SERVER = (
    "for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server "
    '/usr/lib/ssh/sftp-server; do [ -x "$p" ] && exec "$p"; done; '
    'echo "no sftp-server in /usr/lib/openssh or /usr/libexec/openssh" >&2; exit 127'
)


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


class CommandTimeout(RemoteError):
    """A command ran past its timeout: abandoned, and stopped by the host shortly after.

    `code` is 124, what `timeout(1)` exits with; stdout and stderr are what arrived in time."""

    def __init__(self, host: str, command: str, timeout: float, stdout: str, stderr: str) -> None:
        super().__init__(
            host,
            command,
            124,
            stdout,
            stderr,
            what=(
                f"still ran after its timeout of {timeout:g} s: stopped waiting (the host stops "
                f"it within {2 * KILL_GRACE_S:g} s); see what the host is doing with "
                "`adpulse status`"
            ),
        )
        self.timeout = timeout


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


def _host_id(target: Target) -> str:
    return target.address if target.port == 22 else f"[{target.address}]:{target.port}"


def proxy_command_line(template: str, target: Target) -> str:
    """`template` with its `%` tokens replaced by `target`'s values, word by word (a value is
    one word however it is spelled)."""
    values = {"h": target.address, "p": str(target.port), "r": target.user, "n": target.name}
    values["%"] = "%"

    def one(match: re.Match[str]) -> str:
        letter = match.group(1)
        if letter == "i":
            if not target.instance_id:
                raise SshError(
                    f"the proxy command uses %i, but {target.name} has no known instance id: "
                    "use %h (its address) or give the host's instance id"
                )
            return target.instance_id
        if letter not in values:
            raise SshError(
                f"the proxy command has an unknown token %{letter}: use %h, %p, %r, %n, %i or %%"
            )
        return values[letter]

    try:
        words = shlex.split(template)
    except ValueError as exc:
        raise SshError(f"the proxy command {template!r} does not parse: {exc}") from None
    if not words:
        raise SshError("the proxy command is empty: give a command, or leave it out")
    return shlex.join(re.sub(r"%(.?)", one, word) for word in words)


class Connection:
    """One logged-in session to a host; use `connect(...)` or `open_host(...)`."""

    def __init__(
        self, target: Target, client: paramiko.SSHClient, hops: Sequence[Any] = ()
    ) -> None:
        self.target = target
        self._client = client
        self._hops = list(hops)  # a bastion's client and/or a proxy command: closed after us
        self._sftp: paramiko.SFTPClient | None = None

    def _transport(self) -> paramiko.Transport:
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise SshError(
                f"the connection to {self.target.name} ({self.target.address}) is closed: "
                "the host went away or rebooted; run the command again"
            )
        return transport

    def _wrap(self, command: str, timeout: float) -> str:
        # The host's own deadline, a little after ours: a command we gave up on does not keep
        # running there (a channel closed without a terminal sends it no signal).
        limit = f"timeout -k {KILL_GRACE_S:g} {timeout + KILL_GRACE_S:g}"
        wrapped = f"{limit} sh -c {shlex.quote(command)}"
        return wrapped if self.target.user == "root" else f"sudo -n {wrapped}"

    def run(
        self,
        command: str | Sequence[str],
        stdin: bytes | None = None,
        check: bool = True,
        timeout: float = 300.0,
    ) -> Result:
        """Run a command as root (through `sh -c`) on the host; `stdin` is how a secret travels.

        Raises CommandTimeout (a RemoteError) when it runs past `timeout` seconds, RemoteError
        when it exits non-zero and `check`, SshError when the connection is lost."""
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        text = command if isinstance(command, str) else shlex.join(command)
        deadline = time.monotonic() + timeout
        chan = self._transport().open_session(timeout=CONNECT_TIMEOUT_S)
        out, err = bytearray(), bytearray()
        try:
            chan.exec_command(self._wrap(text, timeout))
            if stdin is not None:
                # a command that does not read its stdin stops this once the window is full
                chan.settimeout(max(deadline - time.monotonic(), 0.001))
                try:
                    chan.sendall(stdin)
                except TimeoutError:
                    raise CommandTimeout(self.target.name, text, timeout, "", "") from None
            chan.shutdown_write()
            pause = 0.001
            # The exit status can arrive before the last output: read until the channel's EOF
            # *and* the status are both in, then take whatever is still buffered.
            while not (chan.eof_received and chan.exit_status_ready()):
                if chan.recv_ready():
                    out += chan.recv(65536)
                    pause = 0.001
                elif chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                    pause = 0.001
                elif chan.closed:
                    break  # the transport died: no status will come
                elif time.monotonic() >= deadline:
                    o, e = out.decode(errors="replace"), err.decode(errors="replace")
                    raise CommandTimeout(self.target.name, text, timeout, o, e)
                else:
                    time.sleep(pause)
                    pause = min(2 * pause, 0.02)
            while chan.recv_ready():
                out += chan.recv(65536)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            code = chan.recv_exit_status() if chan.exit_status_ready() else -1
        finally:
            chan.close()
        if code == -1:
            raise SshError(
                f"{self.target.name}: the connection was lost while `{text}` ran: check that the "
                "host is up (`adpulse status`), then run the command again"
            )
        result = Result(code, out.decode(errors="replace"), err.decode(errors="replace"))
        if check and code != 0:
            raise RemoteError(self.target.name, text, code, result.stdout, result.stderr)
        return result

    def put(self, path: str, data: bytes, mode: int = 0o644, owner: str = "root:root") -> None:
        """Write `data` to `path` atomically, with its mode and owner set before it appears.

        The bytes travel over SFTP, written by root (a login user other than root starts the
        host's sftp-server through `sudo -n`, so any directory will do), into a private
        temporary file beside `path` (root's, 0600), which then gets its owner and mode and is
        renamed over `path`: readers see the old file or the new one, never part of one.
        Missing parent directories are made root:root 0755. Raises RemoteError when a step on
        the host fails (an unknown owner), SshError when the upload fails (a full disk); the
        old file is then untouched."""
        self._upload(path, io.BytesIO(data), len(data), mode, owner)

    def put_file(
        self, path: str, local_path: Path, mode: int = 0o644, owner: str = "root:root"
    ) -> None:
        """`put` for a local file, streamed from disk (a release archive is never all in
        memory)."""
        try:
            source = open(local_path, "rb")
        except OSError as exc:
            raise SshError(f"cannot read {local_path} to upload it: {exc.strerror}") from None
        with source:
            self._upload(path, source, os.fstat(source.fileno()).st_size, mode, owner)

    def _upload(self, path: str, source: IO[bytes], size: int, mode: int, owner: str) -> None:
        import paramiko

        dest = PurePosixPath(path)
        if not dest.is_absolute() or not dest.name:
            raise ValueError(f"upload to an absolute file path, not {path!r}")
        folder, q = shlex.quote(str(dest.parent)), shlex.quote
        stage = (
            f"set -e; umask 022; mkdir -p -- {folder}; "
            f"tmp=$(mktemp -- {q(f'{dest.parent}/.{dest.name}.XXXXXX')}); "
            'echo "$tmp"'
        )
        tmp = self.run(stage).stdout.strip()
        try:
            try:
                self._sftp_client().putfo(source, tmp, file_size=size, confirm=True)
            except (OSError, EOFError, paramiko.SSHException) as exc:
                self._drop_sftp()  # it may be half-way through a request: start afresh
                raise self._upload_failed(path, size, exc) from None
            done = self.run(
                f'set -e; tmp={q(tmp)}; chown -- {q(owner)} "$tmp"; chmod {mode:o} "$tmp"; '
                f'sync -- "$tmp"; mv -f -- "$tmp" {q(path)}',
                check=False,
            )
            if done.code != 0:
                raise RemoteError(self.target.name, f"put {path}", done.code, "", done.stderr)
        except BaseException:
            try:
                self.run(f"rm -f -- {q(tmp)}", check=False, timeout=30)
            except AdpulseError:
                pass  # the host is gone; the hidden temporary file is all that is left
            raise

    def _sftp_client(self) -> paramiko.SFTPClient:
        """An SFTP session that writes as root, on this connection's transport."""
        import paramiko

        if self._sftp is not None:
            return self._sftp
        transport = self._transport()
        if self.target.user == "root":
            try:
                self._sftp = paramiko.SFTPClient.from_transport(transport)
            except paramiko.SSHException as exc:
                raise SshError(
                    f"{self.target.name} refused SFTP ({exc}): uploads need sshd's sftp "
                    "subsystem (`Subsystem sftp ...` in /etc/ssh/sshd_config, on by default)"
                ) from None
        else:
            chan = transport.open_session(timeout=CONNECT_TIMEOUT_S)
            chan.exec_command(f"sudo -n sh -c {shlex.quote(_SFTP_SERVER)}")
            try:
                self._sftp = paramiko.SFTPClient(chan)
            except (paramiko.SSHException, EOFError) as exc:
                said = " | ".join(_stderr_of(chan).strip().splitlines()[-3:])
                chan.close()
                raise SshError(
                    f"{self.target.name}: cannot start the sftp-server as root through "
                    f"`sudo -n` ({said or exc}): {self.target.user} needs passwordless sudo, "
                    "and the host OpenSSH's sftp-server"
                ) from None
        assert self._sftp is not None
        self._sftp.get_channel().settimeout(UPLOAD_STALL_S)
        return self._sftp

    def _drop_sftp(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
            self._sftp = None

    def free_bytes(self, path: str) -> tuple[int, str]:
        """(bytes free to root, mount point) of the file system that holds `path`, or would
        hold it: a path that does not exist yet is looked up by its nearest existing parent."""
        script = (
            f'p={shlex.quote(path)}; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; '
            'df -B1 --output=avail,target "$p" | tail -n 1'
        )
        free, _, mount = self.run(script, timeout=30).stdout.strip().partition(" ")
        return int(free), mount.strip()

    def _upload_failed(self, path: str, size: int, exc: BaseException) -> SshError:
        folder = PurePosixPath(path).parent
        why = f"upload of {path} ({size} bytes) to {self.target.name} failed ({exc or type(exc)})"
        try:
            free, _ = self.free_bytes(str(folder))
        except (AdpulseError, ValueError):
            return SshError(f"{why}: check that the host is up and its disk has room")
        if free < size:
            return SshError(
                f"{why}: its disk is full ({free} bytes free in {folder}, {size} needed): free "
                "space there, then deploy again"
            )
        return SshError(f"{why}: check the host's sshd log (`journalctl -u ssh`)")

    def close(self) -> None:
        self._drop_sftp()
        _close_client(self._client)
        for hop in reversed(self._hops):
            _close_hop(hop)


def _stderr_of(chan: Any) -> str:
    """What a finished channel wrote to stderr."""
    err = bytearray()
    while chan.recv_stderr_ready():
        err += chan.recv_stderr(65536)
    return err.decode(errors="replace")


def _close_client(client: paramiko.SSHClient) -> None:
    """Close `client` and wait for its transport's thread: that thread closes the socket (a
    proxy command) last, which must happen before the proxy command is reaped."""
    transport = client.get_transport()
    client.close()
    if transport is not None:
        transport.join(5)


def _close_hop(hop: Any) -> str:
    """Close a bastion's client, or stop and reap a proxy command; returns the last lines the
    proxy command wrote to stderr ("" for a bastion)."""
    process: subprocess.Popen[bytes] | None = getattr(hop, "process", None)
    if process is None:
        _close_client(hop)
        return ""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    said = b""
    if process.stderr is not None and not process.stderr.closed:
        os.set_blocking(process.stderr.fileno(), False)  # a child of it may still hold it open
        said = process.stderr.read() or b""
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()
    return " | ".join(said.decode(errors="replace").strip().splitlines()[-3:])


def _client(known_hosts: Path) -> paramiko.SSHClient:
    import paramiko

    # paramiko's transport thread logs a failed login with a traceback; the error we raise
    # says it in one line. A handler of the application's (on the root logger) still sees it.
    logging.getLogger("paramiko").addHandler(_QUIET)
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

    pkey = load_key(key_file) if key_file else None
    client = _client(known_hosts)
    try:
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
        except BaseException:
            _close_client(client)  # its transport (and a proxy command under it) with it
            raise
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


def _proxy(template: str, target: Target) -> paramiko.ProxyCommand:
    import paramiko

    line = proxy_command_line(template, target)
    try:
        return paramiko.ProxyCommand(line)
    except OSError as exc:
        raise SshError(
            f"the proxy command for {target.name} (`{line}`) cannot start: "
            f"{exc.strerror or exc}: check that it is installed and on PATH"
        ) from None


def _proxy_failed(exc: SshError, proxy: Any, target: Target) -> SshError:
    """When the proxy command has exited, an error saying so with what it wrote to stderr;
    else `exc` as it is (the proxy worked: the SSH error is the news)."""
    try:
        code = proxy.process.wait(0.5)
    except subprocess.TimeoutExpired:
        return exc
    said = _close_hop(proxy)
    return SshError(
        f"cannot reach {target.name} through the proxy command `{shlex.join(proxy.cmd)}`: it "
        f"exited {code}"
        + (f" saying: {said}" if said else " without a word on stderr")
        + "; run it by hand to see why (SSM: the session-manager-plugin installed, the "
        "instance's SSM agent online)"
    )


def _through(bastion: paramiko.SSHClient, jump: Target, target: Target) -> Any:
    """A channel from the bastion to `target`'s SSH port, to log in over."""
    import paramiko

    transport = bastion.get_transport()
    assert transport is not None
    try:
        return transport.open_channel(
            "direct-tcpip",
            (target.address, target.port),
            ("127.0.0.1", 0),
            timeout=CONNECT_TIMEOUT_S,
        )
    except (paramiko.SSHException, OSError) as exc:  # ChannelException is an SSHException
        raise SshError(
            f"the bastion {jump.name} cannot reach {target.name} at "
            f"{target.address}:{target.port} ({exc})"
        ) from None


@contextmanager
def connect(
    target: Target,
    stack: str,
    known_hosts: Path,
    key_file: Path | None = None,
    jump: Target | None = None,
    proxy_command: str | None = None,
) -> Iterator[Connection]:
    """A session to `target`, through `jump` when given (both checked against known_hosts), the
    first hop carried by `proxy_command` when given (see `Access`)."""
    hops: list[Any] = []
    try:
        first = jump or target
        sock = _proxy(proxy_command, first) if proxy_command else None
        if sock is not None:
            hops.append(sock)
        try:
            client = _open(first, stack, known_hosts, key_file, sock=sock)
        except SshError as exc:
            raise (_proxy_failed(exc, sock, first) if sock is not None else exc) from None
        if jump is not None:
            hops.append(client)
            client = _open(target, stack, known_hosts, key_file, _through(client, jump, target))
    except BaseException:
        for hop in reversed(hops):
            _close_hop(hop)
        raise
    conn = Connection(target, client, hops)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def open_host(target: Target, stack: str, access: Access) -> Iterator[Connection]:
    """A session to `target` as `access` says (its user, key, jump host, proxy command)."""
    with connect(
        replace(target, user=access.user),
        stack,
        known_hosts_path(stack, access.state_dir),
        access.key_file,
        jump=access.jump,
        proxy_command=access.proxy_command,
    ) as conn:
        yield conn


def scan(
    target: Target, access: Access | None = None, stack: str = ""
) -> list[tuple[str, paramiko.PKey]]:
    """The host keys `target` offers (key type, key), read without trusting them; through
    `access`'s proxy command or jump host when it has one (the jump host must be trusted
    already: trust it first)."""
    import logging

    # A host without a key of one type ends that probe with an error paramiko logs at ERROR
    # with a traceback; that is the expected answer here, not a problem to show.
    quiet = logging.getLogger("paramiko.transport")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        if access is None or access.jump is None:
            proxy = access.proxy_command if access else None
            return _scan(target, lambda: _direct(target, proxy))
        with connect(
            access.jump,
            stack,
            known_hosts_path(stack, access.state_dir),
            access.key_file,
            proxy_command=access.proxy_command,
        ) as bastion:
            jump = access.jump
            return _scan(target, lambda: _through(bastion._client, jump, target))
    finally:
        quiet.setLevel(level)


def _direct(target: Target, proxy_command: str | None) -> Any:
    if proxy_command:
        return _proxy(proxy_command, target)
    try:
        return socket.create_connection((target.address, target.port), CONNECT_TIMEOUT_S)
    except OSError as exc:
        raise SshError(
            f"cannot reach {target.name} at {target.address}:{target.port} "
            f"({exc.strerror}): is the host running?"
        ) from None


def _scan(target: Target, dial: Any) -> list[tuple[str, paramiko.PKey]]:
    import paramiko

    found = []
    for kind in ("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512"):
        sock = dial()
        transport = paramiko.Transport(sock)
        failed: SshError | None = None
        try:
            transport.get_security_options().key_types = [kind]
            transport.start_client(timeout=CONNECT_TIMEOUT_S)
            key = transport.get_remote_server_key()
            found.append((key.get_name(), key))
        except paramiko.IncompatiblePeer:
            pass  # the host has no key of this type
        except (paramiko.SSHException, EOFError, OSError) as exc:
            failed = SshError(
                f"{target.name} ({target.address}): cannot read its host keys: {exc or type(exc)}"
            )
        finally:
            transport.close()
            transport.join(5)
        if isinstance(sock, paramiko.ProxyCommand):
            if failed is not None:
                raise _proxy_failed(failed, sock, target)
            _close_hop(sock)
        if failed is not None:
            raise failed
    return found


def trust(
    found: Mapping[Target, Sequence[tuple[str, paramiko.PKey]]], known_hosts: Path
) -> list[tuple[Target, str, str]]:
    """Record exactly the keys in `found` (what `scan` returned and a person confirmed) in
    known_hosts (0600), replacing old keys of the same hosts; returns (target, key type,
    fingerprint) of each key recorded."""
    import paramiko

    keys = paramiko.HostKeys()
    if known_hosts.exists():
        keys.load(str(known_hosts))
    recorded = []
    for target, offered in found.items():
        host = _host_id(target)
        if host in keys:
            del keys[host]
        for kind, key in offered:
            keys.add(host, kind, key)
            recorded.append((target, kind, fingerprint(key)))
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    tmp = known_hosts.with_suffix(".tmp")
    keys.save(str(tmp))
    tmp.chmod(0o600)
    tmp.replace(known_hosts)
    return recorded
