"""`adpulse status`: per app host, the release, each unit's state, health, consumer lag,
freshness and the API's P95, read once (no waiting, nothing changed)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from adpulse.errors import AdpulseError
from deploy import health, host_step, slo
from deploy.inventory import Host, StackInventory, host_order
from deploy.remote_state import read_state
from deploy.rollout import Opener, previous_release
from deploy.ssh import Target
from deploy.stack_facts import METRICS_PORT


@dataclass(frozen=True)
class HostStatus:
    host: str
    address: str
    reachable: bool
    error: str | None = None
    release: str | None = None
    previous: str | None = None  # what `adpulse rollback` would go back to
    releases: tuple[str, ...] = ()
    units: dict[str, str] | None = None  # unit -> "active (running) on <release>"
    health: dict[str, str] | None = None  # check -> "ok" or why not
    consumer_lag: float | None = None
    freshness_s: float | None = None
    api_p95_ms: float | None = None  # since the API process started
    api_requests: int | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def host_status(inv: StackInventory, host: Host, opener: Opener, user: str) -> HostStatus:
    target = Target(host.name, host.private_ip, user=user)
    try:
        with opener(target) as conn:
            state = read_state(conn, ())
    except AdpulseError as exc:
        return HostStatus(host.name, host.private_ip, False, error=str(exc))
    units = {
        unit: f"{s.active} ({s.sub})" + (f" on {s.release}" if s.release else "")
        for unit, s in sorted(state.units.items())
    }
    probes = host_step.host_probes(
        host.private_ip, inv.api_port, inv.dashboard_port, METRICS_PORT, max_lag=1 << 62
    )
    checks = {check.name: health.probe(check)[1] for _, check in probes.checks}
    lag, fresh = _consumer(probes.consumer_metrics)
    p95, n = _api(probes.api_metrics)
    return HostStatus(
        host.name,
        host.private_ip,
        True,
        release=state.current,
        previous=previous_release(state),
        releases=state.releases,
        units=units,
        health=checks,
        consumer_lag=lag,
        freshness_s=fresh,
        api_p95_ms=p95,
        api_requests=n,
    )


def stack_status(inv: StackInventory, opener: Opener, user: str) -> list[HostStatus]:
    return [host_status(inv, host, opener, user) for host in host_order(inv.app_hosts)]


def _consumer(url: str) -> tuple[float | None, float | None]:
    """The largest lag and the freshness, each None ("unknown") when the consumer's /metrics
    does not answer, is not Prometheus text, or lacks the metric (another release, say): the
    health checks beside them say why."""
    try:
        scrape = slo.scrape(url, 3.0)
        lags = health.consumer_lags(scrape.text)
    except (slo.MetricsError, ValueError):
        return None, None
    try:
        fresh = slo.freshness_s(scrape)
    except slo.MetricsError:
        fresh = None
    return (max(lags) if lags else None), fresh


def _api(url: str) -> tuple[float | None, int | None]:
    try:
        window = slo.since_start(slo.scrape(url, 3.0))
    except slo.MetricsError:
        return None, None
    if window.requests == 0:
        return None, 0
    return window.quantile(0.95) * 1000, window.requests


def render(statuses: Iterable[HostStatus]) -> list[str]:
    """Lines for people: one block per host."""
    lines = []
    for s in statuses:
        if not s.reachable:
            lines.append(f"{s.host} ({s.address}): unreachable: {s.error}")
            continue
        back = f", rollback target {s.previous}" if s.previous else ""
        lines.append(f"{s.host} ({s.address}): release {s.release or 'none'}{back}")
        for unit, state in (s.units or {}).items():
            lines.append(f"  {unit:<28} {state}")
        for check, why in (s.health or {}).items():
            lines.append(f"  {check:<28} {why}")
        lag = "unknown" if s.consumer_lag is None else f"{s.consumer_lag:.0f} messages"
        fresh = "unknown" if s.freshness_s is None else f"{s.freshness_s:.1f} s"
        p95 = (
            f"{s.api_p95_ms:.1f} ms over {s.api_requests} requests"
            if s.api_p95_ms is not None
            else "no requests yet"
        )
        lines.append(f"  consumer lag {lag}, freshness {fresh}; API P95 {p95} since start")
    return lines
