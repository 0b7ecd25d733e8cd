"""Logging in to a host (strict host keys, a key file or the agent, through the hops) and the
`Connection` the commands use."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploy.ssh_exec import run_command
from deploy.ssh_hops import close_client, close_hop, proxy_failed, start_proxy, through
from deploy.ssh_types import (
    CONNECT_TIMEOUT_S,
    Access,
    Result,
    SshError,
    Target,
    fingerprint,
    known_hosts_path,
)
from deploy.ssh_upload import Uploader

if TYPE_CHECKING:
    import paramiko

_QUIET = logging.NullHandler()


class Connection:
    """One logged-in session to a host; use `connect(...)` or `open_host(...)`."""

    def __init__(
        self, target: Target, client: paramiko.SSHClient, hops: Sequence[Any] = ()
    ) -> None:
        self.target = target
        self._client = client
        self._hops = list(hops)  # a bastion's client and/or a proxy command: closed after us
        self._files = Uploader(target, self._transport, self.run)

    def _transport(self) -> paramiko.Transport:
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise SshError(
                f"the connection to {self.target.name} ({self.target.address}) is closed: "
                "the host went away or rebooted; run the command again"
            )
        return transport

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
        return run_command(self._transport, self.target, command, stdin, check, timeout)

    def put(self, path: str, data: bytes, mode: int = 0o644, owner: str = "root:root") -> None:
        """Write `data` to `path` atomically, with its mode and owner set before it appears.

        The bytes travel over SFTP, written by root (a login user other than root starts the
        host's sftp-server through `sudo -n`, so any directory will do), into a private
        temporary file beside `path` (root's, 0600), which then gets its owner and mode and is
        renamed over `path`: readers see the old file or the new one, never part of one.
        Missing parent directories are made root:root 0755. Raises RemoteError when a step on
        the host fails (an unknown owner), SshError when the upload fails (a full disk); the
        old file is then untouched."""
        self._files.upload(path, io.BytesIO(data), len(data), mode, owner)

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
            self._files.upload(path, source, os.fstat(source.fileno()).st_size, mode, owner)

    def free_bytes(self, path: str) -> tuple[int, str]:
        """(bytes free to root, mount point) of the file system that holds `path`, or would
        hold it: a path that does not exist yet is looked up by its nearest existing parent."""
        return self._files.free_bytes(path)

    def close(self) -> None:
        self._files.close()
        close_client(self._client)
        for hop in reversed(self._hops):
            close_hop(hop)


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
            close_client(client)  # its transport (and a proxy command under it) with it
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
        sock = start_proxy(proxy_command, first) if proxy_command else None
        if sock is not None:
            hops.append(sock)
        try:
            client = _open(first, stack, known_hosts, key_file, sock=sock)
        except SshError as exc:
            raise (proxy_failed(exc, sock, first) if sock is not None else exc) from None
        if jump is not None:
            hops.append(client)
            client = _open(target, stack, known_hosts, key_file, through(client, jump, target))
    except BaseException:
        for hop in reversed(hops):
            close_hop(hop)
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
