"""The hops before a host: a ProxyCommand (SSM) run locally, a channel through a jump host, and
closing them in order."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from typing import TYPE_CHECKING, Any

from deploy.ssh_types import CONNECT_TIMEOUT_S, SshError, Target

if TYPE_CHECKING:
    import paramiko


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


def start_proxy(template: str, target: Target) -> paramiko.ProxyCommand:
    """`template` for `target` started locally: the socket to log in over."""
    import paramiko

    line = proxy_command_line(template, target)
    try:
        return paramiko.ProxyCommand(line)
    except OSError as exc:
        raise SshError(
            f"the proxy command for {target.name} (`{line}`) cannot start: "
            f"{exc.strerror or exc}: check that it is installed and on PATH"
        ) from None


def proxy_failed(exc: SshError, proxy: Any, target: Target) -> SshError:
    """When the proxy command has exited, an error saying so with what it wrote to stderr;
    else `exc` as it is (the proxy worked: the SSH error is the news)."""
    try:
        code = proxy.process.wait(0.5)
    except subprocess.TimeoutExpired:
        return exc
    said = close_hop(proxy)
    return SshError(
        f"cannot reach {target.name} through the proxy command `{shlex.join(proxy.cmd)}`: it "
        f"exited {code}"
        + (f" saying: {said}" if said else " without a word on stderr")
        + "; run it by hand to see why (SSM: the session-manager-plugin installed, the "
        "instance's SSM agent online)"
    )


def through(bastion: paramiko.SSHClient, jump: Target, target: Target) -> Any:
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


def close_client(client: paramiko.SSHClient) -> None:
    """Close `client` and wait for its transport's thread: that thread closes the socket (a
    proxy command) last, which must happen before the proxy command is reaped."""
    transport = client.get_transport()
    client.close()
    if transport is not None:
        transport.join(5)


def close_hop(hop: Any) -> str:
    """Close a bastion's client, or stop and reap a proxy command; returns the last lines the
    proxy command wrote to stderr ("" for a bastion)."""
    process: subprocess.Popen[bytes] | None = getattr(hop, "process", None)
    if process is None:
        close_client(hop)
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
