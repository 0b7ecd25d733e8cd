"""Running one command as root on a host, with a deadline kept on both ends."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from deploy.ssh_types import CONNECT_TIMEOUT_S, RemoteError, Result, SshError, Target

if TYPE_CHECKING:
    import paramiko

# A command that outlives its timeout is abandoned by us at once and stopped by the host's own
# `timeout` this much later (TERM, then KILL after as long again), so nothing keeps running.
KILL_GRACE_S = 5.0


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


def wrap(command: str, timeout: float, user: str) -> str:
    """`command` as the host runs it: as root, under the host's own deadline."""
    # The host's own deadline, a little after ours: a command we gave up on does not keep
    # running there (a channel closed without a terminal sends it no signal).
    limit = f"timeout -k {KILL_GRACE_S:g} {timeout + KILL_GRACE_S:g}"
    wrapped = f"{limit} sh -c {shlex.quote(command)}"
    return wrapped if user == "root" else f"sudo -n {wrapped}"


def run_command(
    transport: Callable[[], paramiko.Transport],
    target: Target,
    command: str | Sequence[str],
    stdin: bytes | None,
    check: bool,
    timeout: float,
) -> Result:
    """`Connection.run` on the transport `transport()` returns; see there."""
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, not {timeout}")
    text = command if isinstance(command, str) else shlex.join(command)
    deadline = time.monotonic() + timeout
    chan = transport().open_session(timeout=CONNECT_TIMEOUT_S)
    out, err = bytearray(), bytearray()
    try:
        chan.exec_command(wrap(text, timeout, target.user))
        if stdin is not None:
            # a command that does not read its stdin stops this once the window is full
            chan.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                chan.sendall(stdin)
            except TimeoutError:
                raise CommandTimeout(target.name, text, timeout, "", "") from None
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
                raise CommandTimeout(target.name, text, timeout, o, e)
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
            f"{target.name}: the connection was lost while `{text}` ran: check that the "
            "host is up (`adpulse status`), then run the command again"
        )
    result = Result(code, out.decode(errors="replace"), err.decode(errors="replace"))
    if check and code != 0:
        raise RemoteError(target.name, text, code, result.stdout, result.stderr)
    return result
