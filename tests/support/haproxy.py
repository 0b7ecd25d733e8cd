"""A real HAProxy in front of small local HTTP servers, for the load-balancer tests.

Debian's haproxy runs in the foreground (`-db`) from a config in a temporary directory, with
its admin socket beside it; the servers are `http.server`s in threads that count the requests
they get, can hold a request open, can fail their health check, and can stop and start again
on the same port as a restarted service does.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from adpulse.local.processes import spawn, stop
from tests.support.clickhouse_server import free_port

BACKEND = "app"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        # HAProxy's health checks reset the connection once they have the status line.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


_HEAD = """global
    stats socket {root}/admin.sock level admin mode 600
    stats timeout 10s
    maxconn 512

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check {check_timeout}
    # No retry: a request sent to a server that cannot answer fails where the tests see it,
    # instead of HAProxy retrying it 1 s later, once a quick restart is over.
    retries 0
"""
_WEB = """
frontend web
    bind 127.0.0.1:{port}
    default_backend {backend}

backend {backend}
    balance roundrobin
    option httpchk GET /healthz
    default-server check inter 100ms fall 2 rise 2
{servers}
"""
# The same head for both: the local servers answer a check from memory; a real host's /readyz
# asks ClickHouse first, so checks through TARGETS_CONFIG get longer.
CONFIG = _HEAD.replace("{check_timeout}", "1s") + _WEB
TARGETS_CONFIG = _HEAD.replace("{check_timeout}", "2s") + "{sections}\n"


class AppServer:
    """One backend server: `GET /` answers its name, `GET /hold` waits for `release`,
    `GET /healthz` answers 200 while `healthy`. Requests other than health checks are counted."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.healthy = True
        self.release = threading.Event()
        self.held = threading.Semaphore(0)  # one release per request that began to wait
        self._lock = threading.Lock()
        self._count = 0
        self._open: set[socket.socket] = set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._later: threading.Timer | None = None

    @property
    def requests(self) -> int:
        with self._lock:
            return self._count

    def start(self) -> None:
        """Listen on the server's port (the same port after a `stop`)."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                super().setup()
                with server._lock:
                    server._open.add(self.connection)

            def finish(self) -> None:
                with server._lock:
                    server._open.discard(self.connection)
                super().finish()

            def do_GET(self) -> None:
                if self.path == "/healthz":
                    self._answer(200 if server.healthy else 503, b"ok\n")
                    return
                with server._lock:
                    server._count += 1
                if self.path == "/hold":
                    server.held.release()
                    server.release.wait(30)
                self._answer(200, server.name.encode())

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        httpd = _Server(("127.0.0.1", self.port), Handler)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def start_later(self, delay: float) -> None:
        """`start` in `delay` s, as a service coming back from its restart."""
        self._later = threading.Timer(delay, self.start)
        self._later.start()

    def close(self) -> None:
        """Stop for good: a pending `start_later` is cancelled first."""
        if self._later is not None:
            self._later.cancel()
            self._later.join(5)
        self.release.set()
        self.stop()

    def stop(self) -> None:
        """Stop as a killed process does: close the listener and cut every open connection."""
        if self._httpd is None or self._thread is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
        with self._lock:
            for conn in self._open:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed by its handler
        self._httpd = self._thread = None


@dataclass
class Haproxy:
    """A running haproxy: its frontend port, admin socket, process and servers by name."""

    port: int
    socket_path: Path
    proc: subprocess.Popen[bytes]
    servers: Mapping[str, AppServer]

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _wait_ready(ha: Haproxy, log: Path, timeout: float) -> None:
    """Until the frontend accepts connections and the admin socket exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ha.proc.poll() is not None:
            raise RuntimeError(f"haproxy exited with {ha.proc.returncode}: {log.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", ha.port)) == 0 and ha.socket_path.exists():
                return
        time.sleep(0.05)
    raise RuntimeError(f"haproxy did not listen on {ha.port} in {timeout} s: {log.read_text()}")


@contextmanager
def haproxy(root: Path, names: tuple[str, ...] = ("app-1", "app-2", "app-3")) -> Iterator[Haproxy]:
    """HAProxy on a free port balancing backend `app` over one AppServer per name; all of it
    is stopped on exit (haproxy: SIGTERM, SIGKILL after 5 s; the servers' threads joined)."""
    binary = shutil.which("haproxy")
    if binary is None:
        raise RuntimeError("haproxy is not installed: `apt-get install haproxy` (.ci/run does)")
    servers = {name: AppServer(name) for name in names}
    lines = [f"    server {s.name} 127.0.0.1:{s.port}" for s in servers.values()]
    port = free_port()
    config = root / "haproxy.cfg"
    config.write_text(
        CONFIG.format(root=root, port=port, backend=BACKEND, servers="\n".join(lines))
    )
    check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"haproxy refused {config}: {check.stderr}")
    for server in servers.values():
        server.start()
    log = root / "haproxy.log"
    try:
        with log.open("wb") as out:
            proc = spawn([binary, "-f", str(config), "-db"], out=out)
        try:
            ha = Haproxy(port, root / "admin.sock", proc, servers)
            _wait_ready(ha, log, 10)
            yield ha
        finally:
            stop(proc, timeout=5)
    finally:
        for server in servers.values():
            server.close()


SECTION = """
frontend {backend}_in
    bind 127.0.0.1:{port}
    default_backend {backend}

backend {backend}
    balance roundrobin
    option httpchk GET {check}
    default-server check inter 500ms fall 2 rise 2
{servers}
"""


@dataclass
class Frontends:
    """A running haproxy over real hosts: a frontend port per backend, its admin socket."""

    ports: Mapping[str, int]
    socket_path: Path
    proc: subprocess.Popen[bytes]

    def url(self, backend: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[backend]}{path}"


@contextmanager
def haproxy_over(
    root: Path, backends: Mapping[str, tuple[str, Mapping[str, str]]]
) -> Iterator[Frontends]:
    """HAProxy with one frontend and backend per entry of `backends`: name -> (health check
    path, {server name: "ip:port"}); stopped on exit."""
    binary = shutil.which("haproxy")
    if binary is None:
        raise RuntimeError("haproxy is not installed: `apt-get install haproxy` (.ci/run does)")
    ports = {name: free_port() for name in backends}
    sections = "".join(
        SECTION.format(
            backend=name,
            port=ports[name],
            check=check,
            servers="\n".join(f"    server {s} {addr}" for s, addr in servers.items()),
        )
        for name, (check, servers) in backends.items()
    )
    config = root / "haproxy.cfg"
    config.write_text(TARGETS_CONFIG.format(root=root, sections=sections))
    check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"haproxy refused {config}: {check.stderr}")
    log = root / "haproxy.log"
    with log.open("wb") as out:
        proc = spawn([binary, "-f", str(config), "-db"], out=out)
    try:
        fronts = Frontends(ports, root / "admin.sock", proc)
        deadline = time.monotonic() + 10
        while not fronts.socket_path.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not start: {log.read_text()}")
            time.sleep(0.05)
        yield fronts
    finally:
        stop(proc, timeout=5)


def get(url: str, timeout: float = 10.0) -> str:
    """The body of `GET url`: the name of the server that answered."""
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return str(answer.read().decode())


class _Workers:
    """Threads that run while the `with` block runs: started on entry, stopped (`_stop`) and
    joined on exit. Subclasses give each thread its target in `_threads`."""

    _threads: list[threading.Thread]

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._start = time.monotonic()

    def __enter__(self) -> Self:
        self._start = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


class Traffic(_Workers):
    """Steady streams of `GET /` through haproxy, one per thread, a request every `gap` s
    on each, each on a new connection; keeps who answered and every failure."""

    def __init__(self, ha: Haproxy, gap: float = 0.01, threads: int = 1) -> None:
        super().__init__()
        self.ha, self.gap = ha, gap
        self.answered: list[str] = []  # list.append is atomic: threads share these
        self.failures: list[str] = []
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def wait_for(self, name: str, since: int, timeout: float = 5.0) -> bool:
        """True once `name` answered one of the requests after the first `since`."""
        deadline = time.monotonic() + timeout
        while name not in self.answered[since:] and time.monotonic() < deadline:
            time.sleep(0.02)
        return name in self.answered[since:]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.answered.append(get(self.ha.url()))
            except Exception as exc:  # every failure counts, whatever its kind
                self.failures.append(f"{type(exc).__name__}: {exc}")
            time.sleep(self.gap)


class Held:
    """A `GET /hold` that `server` is answering and will not finish before `server.release`
    is set; `result` is its body, or the failure, once it is done."""

    def __init__(self, ha: Haproxy, server: AppServer) -> None:
        for other in ha.servers.values():
            if other is not server:
                other.release.set()  # a try that lands elsewhere returns at once
        self.result: str | None = None
        for _ in range(2 * len(ha.servers)):
            self._thread = threading.Thread(target=self._get, args=(ha.url("/hold"),))
            self._thread.start()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if server.held.acquire(timeout=0.02):
                    return
                if not self._thread.is_alive():
                    break  # it went to another server
        raise RuntimeError(f"no /hold request reached {server.name}")

    def _get(self, url: str) -> None:
        try:
            self.result = get(url, timeout=30)
        except Exception as exc:  # the test asserts on what happened
            self.result = f"{type(exc).__name__}: {exc}"

    def wait(self, timeout: float = 10.0) -> str | None:
        self._thread.join(timeout)
        return self.result


class Steady(_Workers):
    """Steady GETs through a load balancer while the block runs: each thread asks one of `urls`
    (thread i the i-th, in turn), a new connection per request, a request every `gap` s. Keeps
    how many each URL answered, and every failure (an error status counts) with when it came.
    """

    def __init__(self, urls: Sequence[str], threads: int = 4, gap: float = 0.02) -> None:
        super().__init__()
        self.urls, self.gap = list(urls), gap
        self.answered: dict[str, int] = dict.fromkeys(self.urls, 0)
        self.failures: list[str] = []  # list.append is atomic: threads share it
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(self.urls[i % len(self.urls)],), daemon=True)
            for i in range(threads)
        ]

    def _run(self, url: str) -> None:
        while not self._stop.is_set():
            try:
                get(url)
                with self._lock:
                    self.answered[url] += 1
            except Exception as exc:  # every failure counts, whatever its kind
                at = time.monotonic() - self._start
                self.failures.append(f"{at:.1f} s: {url}: {type(exc).__name__}: {exc}")
            time.sleep(self.gap)
