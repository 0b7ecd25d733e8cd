"""TCP forwarders from the test hosts' bridge to services on this machine's loopback.

Postgres, Redis and the test ClickHouse listen on 127.0.0.1 only; the deployed services on the
test hosts reach them at the bridge's gateway address, as production's services reach RDS,
ElastiCache and the ClickHouse nodes at addresses in their VPC. A forwarder is a thread per
connection pair copying bytes both ways; the service sees 127.0.0.1 as the client.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@contextmanager
def forward(
    listen_host: str, listen_port: int, to_port: int, tls: ssl.SSLContext | None = None
) -> Iterator[str]:
    """Accept on listen_host:listen_port (0: any free port) and relay each connection to
    127.0.0.1:to_port until the block exits; yields `host:port` to give the hosts. With `tls`
    (a server context), the listening side speaks TLS and the relay is in clear, as a
    TLS-terminating proxy."""
    server = socket.create_server((listen_host, listen_port), reuse_port=False)
    server.settimeout(0.2)
    stop = threading.Event()
    opened: list[socket.socket] = []

    def connect(client: socket.socket) -> None:
        try:
            if tls is not None:
                client.settimeout(10)
                client = tls.wrap_socket(client, server_side=True)
            upstream = socket.create_connection(("127.0.0.1", to_port), timeout=5)
        except OSError:
            client.close()  # upstream down, or a client that refused our certificate
            return
        upstream.settimeout(None)
        client.settimeout(None)
        opened.extend((client, upstream))
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=connect, args=(client,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"{listen_host}:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        server.close()
        for sock in opened:
            try:
                sock.close()
            except OSError:
                pass
