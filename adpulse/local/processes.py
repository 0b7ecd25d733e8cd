"""Child processes of `adpulse up` that die with it, however it dies.

Each child runs in its own session, so a Ctrl-C at the terminal reaches `adpulse up` alone and
the children are stopped in order (generator, then consumer flush, then broker). Each child
also asks the kernel for SIGKILL when its parent dies (Linux `PR_SET_PDEATHSIG`), so a SIGKILL
or a crash of `adpulse up` leaves no broker, generator or dashboard behind holding its port.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

_PR_SET_PDEATHSIG = 1


def _pdeathsig_hook() -> Callable[[], None] | None:
    """A pre-exec hook that ties the child to this process's life; None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    # Resolved here, before the fork: the child only calls an already-loaded function.
    prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    parent = os.getpid()

    def hook() -> None:
        os.setsid()
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody would signal us.
        if os.getppid() != parent:
            os._exit(1)

    return hook


def spawn(
    args: Sequence[str],
    *,
    out: IO[bytes] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child in its own session that the kernel kills when this process dies.

    The death signal follows the thread that forked the child, so call this from a thread
    that lives as long as the child should (in `adpulse up`, the main thread).
    """
    hook = _pdeathsig_hook()
    # preexec_fn is the only way to set PR_SET_PDEATHSIG from Python.
    return subprocess.Popen(
        list(args),
        stdout=out if out is not None else subprocess.DEVNULL,
        stderr=out if out is not None else subprocess.DEVNULL,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        preexec_fn=hook,
        start_new_session=hook is None,  # the hook calls setsid itself
    )


def stop(proc: subprocess.Popen[bytes], *, timeout: float = 10.0) -> None:
    """SIGTERM the child's process group, then SIGKILL it after `timeout` s (tansu may ignore
    SIGTERM); returns once the child is reaped."""
    if proc.poll() is not None:
        return
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
