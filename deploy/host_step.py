"""One app host through one deploy step: write its files, switch `current`, restart what the
plan says, wait for health; and the way back when any of it fails.

Every file a step writes is first copied to `<path>.adpulse-prev` (mode and owner kept), so the
way back restores the exact bytes the host had, secrets included, without the deployer holding
them; `current` goes back to the release it pointed at. `commit` removes the copies once the
host is healthy and back in the load balancer.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from adpulse.errors import AdpulseError
from deploy import health, layout
from deploy.plan import Plan
from deploy.ssh import Connection

PREVIOUS = ".adpulse-prev"
TRUST_DIR = "/usr/local/share/ca-certificates/"  # update-ca-certificates reads *.crt here
JOURNAL_LINES = 20
# A unit in one of these states will not become healthy by waiting.
_DEAD = ("failed",)


class HostStepError(AdpulseError):
    """A host failed its step; the message names the unit, why, and its last journal lines."""


@dataclass(frozen=True)
class Content:
    data: bytes
    mode: int
    owner: str = layout.ROOT_OWNER


@dataclass(frozen=True)
class Probes:
    """What healthy means for one host: its HTTP checks, each tied to the unit it judges."""

    checks: tuple[tuple[str, health.Check], ...]  # (unit, check)
    api_metrics: str  # the API's /metrics, for the SLO gate
    consumer_metrics: str  # the consumer's /metrics


def host_probes(
    address: str, api_port: int, dashboard_port: int, metrics_port: int, max_lag: int
) -> Probes:
    """The API's /readyz, the dashboard's /healthz, the consumer's /healthz and its lag."""
    base = f"http://{address}"
    return Probes(
        (
            (
                layout.unit_name("api"),
                health.Check("adpulse-api /readyz", f"{base}:{api_port}/readyz"),
            ),
            *(
                (layout.unit_name("consumer"), check)
                for check in health.consumer_checks(address, metrics_port, max_lag)
            ),
            (
                layout.unit_name("dashboard"),
                health.Check("adpulse-dashboard /healthz", f"{base}:{dashboard_port}/healthz"),
            ),
        ),
        api_metrics=f"{base}:{api_port}/metrics",
        consumer_metrics=f"{base}:{metrics_port}/metrics",
    )


def apply(conn: Connection, plan: Plan, contents: Mapping[str, Content]) -> None:
    """Carry out `plan`: keep copies, write files, switch `current`, reload, restart."""
    paths = [w.path for w in plan.writes]
    if paths:
        keep = "; ".join(
            f"if [ -e {q} ]; then cp -p {q} {q}{PREVIOUS}; else rm -f {q}{PREVIOUS}; fi"
            for q in map(shlex.quote, paths)
        )
        conn.run(f"set -e; {keep}")
    for write in plan.writes:
        content = contents[write.path]
        conn.put(write.path, content.data, mode=content.mode, owner=content.owner)
    steps = []
    if any(w.path.startswith(TRUST_DIR) for w in plan.writes):
        steps.append("update-ca-certificates >/dev/null")
    if plan.switch:
        steps += layout.switch_commands(plan.version)
    if plan.daemon_reload or plan.restarts:
        steps.append("systemctl daemon-reload")
        steps.append("systemctl enable --quiet " + " ".join(_all_units()))
    if plan.restarts:
        steps.append("systemctl restart " + " ".join(r.unit for r in plan.restarts))
    if steps:
        conn.run(" && ".join(steps), timeout=180)


def roll_back(conn: Connection, plan: Plan) -> str:
    """Undo `apply` as far as it got: files back, `current` back, the restarted units restarted
    on the previous release; on a first deploy (nothing before it) the units are stopped and
    disabled instead. Returns what it did, for people."""
    units = " ".join(r.unit for r in plan.restarts)
    first = plan.switch and not plan.switch_from
    lines = ["set -e"]
    if first:
        every = " ".join(_all_units())
        lines.append(f"systemctl disable --now --quiet {every} 2>/dev/null || true")
    for write in plan.writes:
        q = shlex.quote(write.path)
        lines.append(f"if [ -e {q}{PREVIOUS} ]; then mv -f {q}{PREVIOUS} {q}; else rm -f {q}; fi")
    if first:
        lines.append(f"rm -f {shlex.quote(str(layout.CURRENT))}")
    elif plan.switch and plan.switch_from:
        lines += layout.switch_commands(plan.switch_from)
    if any(w.path.startswith(TRUST_DIR) for w in plan.writes):
        lines.append("update-ca-certificates >/dev/null")
    lines.append("systemctl daemon-reload")
    if units and not first:
        lines.append(f"systemctl reset-failed {units} 2>/dev/null || true")
        lines.append(f"systemctl restart {units}")
    conn.run("\n".join(lines), timeout=180)
    if first:
        return f"{conn.target.name} had no release before: its units are stopped and disabled"
    back = plan.switch_from if plan.switch else plan.version
    return f"{conn.target.name} is back on release {back}" + (
        f" (restarted {units})" if units else ""
    )


def commit(conn: Connection, plan: Plan) -> None:
    """Drop the copies `apply` kept: the step is final."""
    if plan.writes:
        quoted = " ".join(shlex.quote(w.path + PREVIOUS) for w in plan.writes)
        conn.run(f"rm -f {quoted}")


def journal(conn: Connection, unit: str, secrets: Iterable[str], lines: int = JOURNAL_LINES) -> str:
    """The unit's last journal lines, every known secret value replaced by `***`."""
    out = conn.run(
        f"journalctl -u {shlex.quote(unit)} -n {int(lines)} --no-pager -o short-iso 2>&1 || true"
    ).stdout
    return scrub(out, secrets)


def scrub(text: str, secrets: Iterable[str]) -> str:
    for value in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def unit_states(conn: Connection, units: Sequence[str]) -> dict[str, str]:
    out = conn.run("systemctl is-active " + " ".join(units) + " || true").stdout.split()
    return dict(zip(units, out, strict=False))


def wait_healthy(
    conn: Connection,
    probes: Probes,
    deadline_s: float,
    secrets: Iterable[str],
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Wait until every probe passes in one round; HostStepError naming each failing unit with
    its reason and journal when the deadline passes, or at once when a unit has `failed`."""
    units = sorted({unit for unit, _ in probes.checks})
    checks = [check for _, check in probes.checks]
    end = clock() + deadline_s
    while True:
        try:
            health.wait_healthy(checks, min(clock() + 5.0, end), clock=clock)
            return
        except health.HealthError as exc:
            failed_checks = [r for r in exc.results if not r.ok]
            states = unit_states(conn, units)
            dead = [u for u, s in states.items() if s in _DEAD]
            if dead or clock() >= end:
                raise HostStepError(
                    _explain(conn, probes, failed_checks, states, dead, secrets)
                ) from None


def diagnose(conn: Connection, secrets: Iterable[str]) -> str:
    """Each adpulse unit's state, and the journal of those not active: what to show when a
    step failed for a reason that names no unit (a scrape, the SLO gate, the balancer)."""
    units = _all_units()
    states = unit_states(conn, units)
    parts = [f"  {unit} is {states.get(unit, 'unknown')}" for unit in units]
    for unit in units:
        lines = JOURNAL_LINES if states.get(unit) != "active" else 8
        parts.append(f"  {unit}'s last journal lines:")
        parts += ["    " + line for line in journal(conn, unit, secrets, lines).splitlines()]
    return "\n".join(parts)


def _explain(
    conn: Connection,
    probes: Probes,
    failed: list[health.CheckResult],
    states: Mapping[str, str],
    dead: list[str],
    secrets: Iterable[str],
) -> str:
    secrets = list(secrets)
    unit_of = {id(check): unit for unit, check in probes.checks}
    blamed = dead or sorted({unit_of[id(r.check)] for r in failed})
    parts = [f"{conn.target.name}: not healthy:"]
    for r in failed:
        parts.append(f"  {r.check.name} ({r.check.url}): {r.why}")
    for unit in blamed:
        parts.append(f"  {unit} is {states.get(unit, 'unknown')}; its last journal lines:")
        parts += ["    " + line for line in journal(conn, unit, secrets).splitlines()]
    return "\n".join(parts)


def _all_units() -> list[str]:
    return [layout.unit_name(s) for s in layout.SERVICES]
