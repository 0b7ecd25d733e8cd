"""HAProxy as the deploy's balancer, through its runtime API on the admin socket
(`stats socket PATH level admin`); each host is the server of its name in every backend.

Drain: `set server B/S state drain` (weight 0: no new requests), poll `show stat` until the
server's current sessions (`scur`) and queue (`qcur`) are 0, then `state maint` (no requests,
no checks while its units restart).

Enable does not go straight from maintenance to `state ready`: HAProxy 2.6 marks a server UP
the moment it leaves maintenance, before any check runs (`UP 1/2` with its service stopped),
and would send it requests it cannot answer. So: `state drain` (out of maintenance, still no
requests), `health down`, wait until `rise` fresh checks pass (status `DRAIN`), then `state
ready` and wait for `UP`.
"""

from __future__ import annotations

import csv
import re
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from deploy.balancer import (
    DRAINING,
    OUT,
    SERVING,
    STARTING,
    UNHEALTHY,
    BalancerError,
    combined,
    log,
)
from deploy.inventory import Host

Row = dict[str, str]
# `;` separates runtime-API commands and spaces separate words: names are checked against this.
_NAME = re.compile(r"[A-Za-z0-9._:-]+")
_HINTS = {
    "No such backend.": "check the backend names the balancer was given",
    "No such server.": "name each backend's servers after the hosts (`server app-1 ...`)",
    "Permission denied.": "the stats socket needs `level admin`",
}


def server_state(status: str) -> str:
    """The Balancer word for a `show stat` status: `UP`, `UP 1/2` (up, failing checks),
    `DOWN 1/2` (down, passing checks), `DRAIN`, `NOLB`, `MAINT (via x/y)`, `no check`..."""
    word = status.split(" ", 1)[0]
    if word == "MAINT":
        return OUT
    if word in ("DRAIN", "NOLB"):
        return DRAINING
    if word == "UP" or status == "no check":
        return SERVING
    if word == "DOWN":
        return STARTING if " " in status else UNHEALTHY
    return status


def parse_stat(text: str) -> dict[tuple[str, str], Row]:
    """`show stat` CSV as rows keyed by (backend, server); fields by their header names."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise BalancerError(f"haproxy answered `show stat` with {text[:200]!r}, not its CSV")
    reader = csv.DictReader([lines[0][2:], *filter(None, lines[1:])])
    return {(row["pxname"], row["svname"]): row for row in reader}


def _checked(kind: str, name: str) -> str:
    if not _NAME.fullmatch(name):
        raise BalancerError(f"{kind} {name!r} cannot be named to HAProxy: use [A-Za-z0-9._:-]")
    return name


class HaproxyBalancer:
    """The Balancer over HAProxy's admin socket at `socket_path`, for `backends`.

    `drain_deadline` bounds the wait for in-flight requests, `enable_deadline` the wait for
    health checks; `poll` is the `show stat` interval. Not safe for two deploys at once: the
    deploy lock keeps them apart.
    """

    def __init__(
        self,
        socket_path: Path,
        backends: Sequence[str],
        *,
        drain_deadline: float = 60.0,
        enable_deadline: float = 120.0,
        poll: float = 0.1,
        timeout: float = 5.0,
    ) -> None:
        if not backends:
            raise ValueError("HaproxyBalancer needs at least one backend")
        self.socket_path = socket_path
        self.backends = tuple(_checked("backend", b) for b in backends)
        self.drain_deadline, self.enable_deadline = drain_deadline, enable_deadline
        self.poll, self.timeout = poll, timeout

    def drain(self, host: Host) -> None:
        name = _checked("host", host.name)
        rows = self._rows(name)
        todo = [b for b, row in rows.items() if server_state(row["status"]) != OUT]
        for backend in todo:
            self._set(backend, name, "state drain")
        end = time.monotonic() + self.drain_deadline
        busy = self._wait(name, todo, lambda row: _in_flight(row) == 0, end)
        if busy:
            counts = ", ".join(f"{b}: {_in_flight(row)}" for b, row in busy.items())
            log.warning(
                "%s: requests still in flight after %g s (%s); taking it out anyway",
                name,
                self.drain_deadline,
                counts,
            )
        for backend in todo:
            self._set(backend, name, "state maint")

    def enable(self, host: Host) -> None:
        name = _checked("host", host.name)
        rows = self._rows(name)
        todo = [b for b, row in rows.items() if not row["status"].startswith("UP")]
        for backend in todo:
            self._set(backend, name, "state drain")
        unchecked = [
            b for b, row in self._rows(name).items() if b in todo and not row["check_rise"]
        ]
        if unchecked:
            self._out(name, todo)
            raise BalancerError(
                f"haproxy backend {unchecked[0]}: server {name} has no health check, so enable "
                "cannot see it healthy: add `check` to it and `option httpchk GET /healthz`"
            )
        for backend in todo:
            self._set(backend, name, "health down")
        end = time.monotonic() + self.enable_deadline
        # Only after fresh checks passed (DRAIN: up, still without requests) does it get any.
        failing = self._wait(name, todo, lambda row: row["status"] == "DRAIN", end)
        if not failing:
            for backend in todo:
                self._set(backend, name, "state ready")
            failing = self._wait(name, self.backends, lambda row: row["status"] == "UP", end)
        if failing:
            self._out(name, self.backends)
            backend, row = next(iter(failing.items()))
            check = " ".join(filter(None, (row["check_status"], row["check_code"])))
            said = row["last_chk"] or row["check_desc"]
            raise BalancerError(
                f"haproxy backend {backend}: server {name} not healthy after "
                f"{self.enable_deadline:g} s ({row['status']}; last check {check or 'none'}"
                f"{': ' + said if said else ''}); it is out of the backend again: fix what fails "
                "its health check, then enable it again"
            )

    def state(self, host: Host) -> str:
        rows = self._rows(_checked("host", host.name))
        return combined({b: server_state(row["status"]) for b, row in rows.items()})

    def _wait(
        self, name: str, backends: Sequence[str], done: Callable[[Row], bool], end: float
    ) -> dict[str, Row]:
        """Poll until `done` holds for the server in every backend, twice in a row (a request
        HAProxy has just given the server is counted in `scur` only once it connects);
        returns the backends where it still does not at `end` (a time.monotonic() value)."""
        passed = 0
        while True:
            rows = self._rows(name)
            left = {b: rows[b] for b in backends if not done(rows[b])}
            passed = 0 if left else passed + 1
            if passed >= 2 or time.monotonic() >= end:
                return left
            time.sleep(self.poll)

    def _out(self, name: str, backends: Sequence[str]) -> None:
        for backend in backends:
            self._set(backend, name, "state maint")

    def _rows(self, name: str) -> dict[str, Row]:
        rows = parse_stat(self._send("show stat"))
        missing = [b for b in self.backends if (b, name) not in rows]
        if missing:
            have = sorted(
                s for b, s in rows if b == missing[0] and s not in ("FRONTEND", "BACKEND")
            )
            raise BalancerError(
                f"haproxy backend {missing[0]} has no server {name} "
                f"({'servers: ' + ', '.join(have) if have else 'no such backend'}): "
                "name each backend's servers after the hosts"
            )
        return {b: rows[(b, name)] for b in self.backends}

    def _set(self, backend: str, name: str, change: str) -> None:
        answer = self._send(f"set server {backend}/{name} {change}").strip()
        if answer:
            hint = _HINTS.get(answer, "see HAProxy's management guide")
            raise BalancerError(
                f"haproxy backend {backend}: `set server {backend}/{name} {change}` refused: "
                f"{answer} ({hint})"
            )

    def _send(self, command: str) -> str:
        """One command on a fresh connection; HAProxy closes it after answering."""
        chunks = []
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(str(self.socket_path))
                sock.sendall(command.encode() + b"\n")
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise BalancerError(
                f"cannot reach haproxy's admin socket {self.socket_path} "
                f"({exc.strerror or exc}): is haproxy running with `stats socket "
                f"{self.socket_path} level admin`?"
            ) from None
        return b"".join(chunks).decode(errors="replace")


def _in_flight(row: Row) -> int:
    return int(row["scur"] or 0) + int(row["qcur"] or 0)
