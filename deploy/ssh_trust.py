"""Host-key trust: reading the keys a host offers without trusting them, and recording the ones
a person confirmed in the stack's known_hosts."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploy.ssh_connect import connect
from deploy.ssh_hops import close_hop, proxy_failed, start_proxy, through
from deploy.ssh_types import (
    CONNECT_TIMEOUT_S,
    Access,
    SshError,
    Target,
    fingerprint,
    known_hosts_path,
)

if TYPE_CHECKING:
    import paramiko


def _host_id(target: Target) -> str:
    return target.address if target.port == 22 else f"[{target.address}]:{target.port}"


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
            return _scan(target, lambda: through(bastion._client, jump, target))
    finally:
        quiet.setLevel(level)


def _direct(target: Target, proxy_command: str | None) -> Any:
    if proxy_command:
        return start_proxy(proxy_command, target)
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
                raise proxy_failed(failed, sock, target)
            close_hop(sock)
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
