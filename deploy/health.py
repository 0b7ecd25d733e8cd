"""Wait until a host's services answer their health checks, and say why when they do not.

What each unit exposes (a release's `adpulse deploy` checks these after restarting a host):
- API: `GET /readyz` on `api_port` (8000): 200 `ready`/`degraded`, 503 when ClickHouse is
  unreachable (api/routers/health.py). `/healthz` only says the process serves HTTP.
- Dashboard: `GET /healthz` on `dashboard_port` (3000): the Next.js process answers, without
  asking the API (dashboard/app/healthz/route.ts).
- Consumer: `GET /healthz` on `metrics_port` (9108; the hosts bind it to `metrics_host`
  0.0.0.0, which the app security group opens to the VPC only): 200 while its poll loop runs,
  503 with a JSON `reason` when the loop is stuck or has not started (consumers/metrics.py).
  Its lag is `adpulse_consumer_lag` on `/metrics` of the same server (`consumer_lag_within`).
  `consumer_checks` gives both checks.

Plain `urllib`: the deploy runs in the CLI, whose dependencies have no HTTP client.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from adpulse.errors import AdpulseError

CONSUMER_LAG = "adpulse_consumer_lag"  # consumers/metrics.py: a gauge per partition
_EXCERPT = 200

# Environment proxies are for the internet; a health check goes to a host or a tunnel's port.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

Judge = Callable[[int, bytes], str | None]
"""Reads one answer (status, body): None when healthy, else why not, for a person."""


class HealthError(AdpulseError):
    """Checks still failed at the deadline; the message names each, its URL and last reason."""

    def __init__(self, message: str, results: list[CheckResult]) -> None:
        super().__init__(message)
        self.results = results


def excerpt(body: bytes) -> str:
    """The body's start on one line, for an error message."""
    text = " ".join(body[: _EXCERPT * 4].decode("utf-8", "replace").split())
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "..."


def answered_2xx(status: int, body: bytes) -> str | None:
    """Healthy when the status is 2xx."""
    if 200 <= status < 300:
        return None
    return f"HTTP {status}: {excerpt(body) or '(empty body)'}"


def consumer_lags(metrics: str) -> list[float]:
    """Each partition's `adpulse_consumer_lag` in the consumer's /metrics text (none before its
    first statistics); ValueError when the text is not Prometheus text."""
    return [
        sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == CONSUMER_LAG
        for sample in family.samples
    ]


def consumer_lag_within(max_lag: int) -> Judge:
    """Healthy when the consumer's /metrics answers and no partition is `max_lag` behind.

    A consumer reports lag only after its first statistics (5 s) and only for partitions it
    owns: with none reported yet it counts as live, and the SLO gate's freshness judges it.
    """

    def judge(status: int, body: bytes) -> str | None:
        if (why := answered_2xx(status, body)) is not None:
            return why
        try:
            lags = consumer_lags(body.decode("utf-8", "replace"))
        except ValueError as exc:
            return f"not Prometheus text ({exc}): {excerpt(body)}"
        if lags and max(lags) > max_lag:
            return f"{CONSUMER_LAG} is {max(lags):.0f} messages (more than {max_lag})"
        return None

    return judge


def consumer_alive(status: int, body: bytes) -> str | None:
    """Healthy when the consumer's /healthz answers 200; else its own `reason`, when it gave one."""
    if 200 <= status < 300:
        return None
    try:
        reason = json.loads(body).get("reason")
    except (ValueError, AttributeError):  # not JSON, or not an object: not the consumer's answer
        reason = None
    if isinstance(reason, str) and reason:
        return f"HTTP {status}: {reason}"
    return answered_2xx(status, body)


@dataclass(frozen=True)
class Check:
    """One HTTP GET that must answer within `timeout_s` and satisfy `judge`."""

    name: str  # the unit or role, e.g. "adpulse-api /readyz"
    url: str
    timeout_s: float = 2.0
    judge: Judge = answered_2xx


@dataclass(frozen=True)
class CheckResult:
    check: Check
    ok: bool
    why: str  # "ok", or the last reason it was not
    attempts: int


def consumer_checks(address: str, port: int, max_lag: int) -> tuple[Check, Check]:
    """The consumer's liveness (`/healthz`) and its lag (`/metrics`, at most `max_lag`
    messages behind on any partition), on the host at `address` (an IP or a name)."""
    base = f"http://{f'[{address}]' if ':' in address else address}:{port}"
    return (
        Check("adpulse-consumer /healthz", f"{base}/healthz", judge=consumer_alive),
        Check("adpulse-consumer lag", f"{base}/metrics", judge=consumer_lag_within(max_lag)),
    )


def get(url: str, timeout_s: float) -> tuple[int, bytes]:
    """GET `url`: (status, body) for any HTTP answer, or OSError when none came in time.

    Raises urllib.error.URLError (an OSError) for refused or unresolved connections,
    TimeoutError for a silent peer, http.client.HTTPException for a peer that does not speak
    HTTP; redirects are followed.
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"health check URL {url!r} is not http(s)://")
    try:
        with _OPENER.open(url, timeout=timeout_s) as answer:
            return int(answer.status), answer.read()
    except urllib.error.HTTPError as exc:  # a 4xx or 5xx answer is still an answer
        with exc:
            return exc.code, exc.read() if exc.fp is not None else b""


def _no_answer(exc: OSError | http.client.HTTPException, timeout_s: float) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (is the unit running and listening on that port?)"
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    if isinstance(reason, socket.gaierror):
        return f"host name does not resolve ({reason})"
    return f"no answer: {reason}"


def probe(check: Check, timeout_s: float | None = None) -> tuple[bool, str]:
    """One try of `check`: (True, "ok") or (False, why)."""
    limit = check.timeout_s if timeout_s is None else timeout_s
    try:
        status, body = get(check.url, limit)
    except (OSError, http.client.HTTPException) as exc:  # HTTPException: not HTTP at all
        return False, _no_answer(exc, limit)
    why = check.judge(status, body)
    return (True, "ok") if why is None else (False, why)


def wait_healthy(
    checks: Sequence[Check],
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    *,
    interval_s: float = 1.0,
) -> list[CheckResult]:
    """Retry every check until all pass in one round; raise HealthError at `deadline`.

    `deadline` is a reading of `clock`. All checks run again each round, so a unit that
    answered once and then died is not reported healthy. A try never waits past the deadline
    (but at least 0.1 s). Returns one result per check, in order, all ok.
    """
    attempts = [0] * len(checks)
    last: list[tuple[bool, str]] = [(False, "not tried")] * len(checks)
    while True:
        for i, check in enumerate(checks):
            remaining = max(deadline - clock(), 0.1)
            attempts[i] += 1
            last[i] = probe(check, min(check.timeout_s, remaining))
        results = [
            CheckResult(check, ok, why, n)
            for check, (ok, why), n in zip(checks, last, attempts, strict=True)
        ]
        if all(r.ok for r in results):
            return results
        left = deadline - clock()
        if left <= 0:
            raise HealthError(_failure(results), results)
        sleep(min(interval_s, left))


def _failure(results: list[CheckResult]) -> str:
    failed = [r for r in results if not r.ok]
    parts = [f"{r.check.name} ({r.check.url}): {r.why} [{r.attempts} tries]" for r in failed]
    return f"not healthy in time: {'; '.join(parts)}"
