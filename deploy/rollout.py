"""`adpulse deploy` and `adpulse rollback`: one release onto every app host, one host at a time.

Under the stack's lock: every host gets the release installed beside the running one first (in
parallel, skipped where it is already installed), so nothing changes on any host until every
host has it. Then, host by host: take it out of the load balancer, apply its plan (files,
`current`, restarts), wait for health, put it back, judge the SLO gate. A failure rolls that host
back to what it ran, leaves the hosts after it untouched, and stops with the reason. A host whose
plan is empty is not touched at all: deploying the same version twice restarts nothing.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from adpulse.errors import AdpulseError
from deploy import host_step, layout, slo
from deploy.audit import default_owner, locked, record
from deploy.balancer import Balancer
from deploy.host_step import Content, HostStepError, Probes
from deploy.install import incoming_path, install, installed_command
from deploy.inventory import Host, StackInventory, host_order
from deploy.lock import lock_target
from deploy.plan import FileState, Plan, compute_plan, describe, file_state
from deploy.prepare import check_disk, prepare
from deploy.release import Release
from deploy.remote_admin import CA_FILE, secret_values
from deploy.remote_state import RemoteState, read_state
from deploy.settings_env import service_environment
from deploy.ssh import CommandTimeout, Connection, RemoteError, Target
from deploy.stack_facts import METRICS_PORT
from deploy.units import render_env_files, render_units, secrets_by_service

Opener = Callable[[Target], AbstractContextManager[Connection]]
Say = Callable[[str], None]


class DeployError(AdpulseError):
    """The deploy stopped; the message says where, why, and what state the hosts are in."""


@dataclass(frozen=True)
class Gate:
    """The SLO gate after a host rejoins (deploy.slo.gate); None in `Options` skips it."""

    window_s: float = 30.0
    p95_max_ms: float = 500.0
    freshness_max_s: float = 60.0
    min_requests: int = 20


@dataclass(frozen=True)
class Options:
    user: str = "admin"
    hosts: tuple[str, ...] = ()  # only these app hosts (names); all when empty
    dry_run: bool = False
    health_timeout_s: float = 120.0
    max_lag: int = 1_000_000
    gate: Gate | None = field(default_factory=Gate)
    command: str = "adpulse deploy"  # for the lock and the audit log; never a secret in it


@dataclass(frozen=True)
class HostOutcome:
    host: str
    plan: Plan
    verdict: str  # "unchanged", "deployed", or the gate's note


def desired_contents(inv: StackInventory) -> dict[str, Content]:
    """Every file the deploy manages on an app host, rendered from the stack."""
    plain, secret = service_environment(inv)
    files = {
        path: Content(text.encode(), layout.UNIT_MODE)
        for path, text in render_units(inv.api_port, inv.dashboard_port).items()
    }
    for path, (text, mode) in render_env_files(plain, secrets_by_service(secret)).items():
        files[path] = Content(text.encode(), mode)
    if inv.topology not in ("single", "cluster"):
        files[inv.topology] = Content(inv.clickhouse_topology_toml.encode(), 0o644)
    if inv.clickhouse_url.startswith("clickhouses://"):
        # The nodes' certificates come from the stack's private CA; the services verify them
        # against the system trust store, which `host_step.apply` refreshes when this changes.
        files[CA_FILE] = Content(inv.clickhouse_ca_pem.encode(), 0o644)
    return files


def chosen_hosts(inv: StackInventory, names: Sequence[str]) -> tuple[Host, ...]:
    hosts = host_order(inv.app_hosts)
    if not names:
        return hosts
    known = {h.name: h for h in hosts}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise DeployError(
            f"stack {inv.stack} has no app host {unknown[0]!r}; its app hosts: {', '.join(known)}"
        )
    return tuple(known[n] for n in names)


def desired_states(contents: Mapping[str, Content]) -> dict[str, FileState]:
    """The state `host_step.apply` leaves each file in: its bytes' checksum, mode and owner."""
    return {path: file_state(c.data, c.mode, c.owner) for path, c in contents.items()}


def plan_for(state: RemoteState, contents: Mapping[str, Content], version: str) -> Plan:
    return compute_plan(desired_states(contents), state.host_state(), version)


def deploy(
    inv: StackInventory,
    opener: Opener,
    balancer: Balancer,
    options: Options,
    say: Say,
    *,
    release: Release | None = None,
    version: str | None = None,
    before_roll: Callable[[Connection, str], None] | None = None,
) -> list[HostOutcome]:
    """Install `release` (or roll to the installed `version`) on the stack's app hosts.

    Exactly one of `release` (upload and install it) and `version` (already installed: a
    rollback) is given. `before_roll` runs once on the first host before any host switches
    (the schema migrations)."""
    if (release is None) == (version is None):
        raise ValueError("give a release to install or an installed version, not both")
    target_version = release.version if release is not None else layout.check_version(version or "")
    hosts = chosen_hosts(inv, options.hosts)
    contents = desired_contents(inv)
    secrets = secret_values(inv)
    if options.dry_run:
        return _dry_run(inv, hosts, opener, options, contents, target_version, release, say)
    lock_host = lock_target(inv, options.user)
    with (
        opener(lock_host) as lock_conn,
        locked(lock_conn, inv.stack, default_owner(), target_version, options.command, secrets),
    ):
        if release is not None:
            _install_everywhere(inv, hosts, opener, options, release, say)
        else:
            _check_installed(hosts, opener, options, target_version)
        if before_roll is not None:
            with opener(_target(hosts[0], options)) as conn:
                before_roll(conn, target_version)
        outcomes = []
        for host in hosts:
            outcomes.append(
                _roll_host(inv, host, opener, balancer, options, contents, target_version, say)
            )
        for host in hosts:
            with opener(_target(host, options)) as conn:
                _prune(conn, say)
    return outcomes


def _target(host: Host, options: Options) -> Target:
    return Target(host.name, host.private_ip, user=options.user)


def _dry_run(
    inv: StackInventory,
    hosts: Sequence[Host],
    opener: Opener,
    options: Options,
    contents: Mapping[str, Content],
    version: str,
    release: Release | None,
    say: Say,
) -> list[HostOutcome]:
    outcomes = []
    for host in hosts:
        with opener(_target(host, options)) as conn:
            state = read_state(conn, contents)
            readying = prepare(conn, dry_run=True)
        plan = plan_for(state, contents, version)
        say(f"{host.name} ({host.private_ip}):")
        for line in readying:
            say(f"  {line}")
        if version not in state.releases:
            what = f"upload and install release {version}"
            if release is not None:
                what += f" ({release.archive.stat().st_size / 1e6:.1f} MB)"
            say(f"  {what}")
        for line in describe(plan):
            say(f"  {line}")
        outcomes.append(HostOutcome(host.name, plan, "dry run"))
    say(f"dry run: nothing changed on {len(hosts)} host(s) of stack {inv.stack}")
    return outcomes


def _install_everywhere(
    inv: StackInventory,
    hosts: Sequence[Host],
    opener: Opener,
    options: Options,
    release: Release,
    say: Say,
) -> None:
    def check(host: Host) -> bool:
        """Preflight, changing nothing: the host answers, and has the release or room for
        it. True when it needs the release."""
        with opener(_target(host, options)) as conn:
            found = conn.run(
                installed_command(release.version, release.manifest_sha256), check=False
            )
            if found.code == 0:
                return False
            check_disk(conn, str(layout.RELEASES), release_room(release))
            return True

    def one(host: Host) -> str:
        with opener(_target(host, options)) as conn:
            for line in prepare(conn):
                say(f"{host.name}: {line}")
            try:
                return f"{host.name}: {install(conn, release)}"
            except RemoteError as exc:  # its message would quote the whole install script
                _remove_incomplete(conn, release)
                said = " | ".join((exc.stderr or exc.stdout).strip().splitlines()[-3:])
                what = "ran past its timeout" if isinstance(exc, CommandTimeout) else "failed"
                raise DeployError(
                    f"{host.name}: installing release {release.version} {what} (exit "
                    f"{exc.code}): {said or 'no output'}; what it had made was removed"
                ) from None
            except AdpulseError:
                _remove_incomplete(conn, release)
                raise

    # Every host is reached and checked before any gets an upload: one unreachable host, a
    # changed host key or a full disk stops the deploy before anything is copied anywhere.
    needs = _on_each(hosts, check, release, say=None)
    todo = [host for host, need in zip(hosts, needs, strict=True) if need]
    for host in hosts:
        if host not in todo:
            say(f"{host.name}: {release.version}: already installed")
    if todo:
        say(f"installing release {release.version} on {len(todo)} host(s) in parallel")
        _on_each(todo, one, release, say=say)


def _on_each(
    hosts: Sequence[Host], work: Callable[[Host], Any], release: Release, say: Say | None
) -> list[Any]:
    """`work` on every host at once; DeployError naming each host's problem if any failed."""
    with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:
        futures = [pool.submit(work, host) for host in hosts]
        results, problems = [], []
        for future in futures:
            try:
                results.append(future.result())
                if say is not None:
                    say(str(results[-1]))
            except AdpulseError as exc:
                problems.append(str(exc))
    if problems:
        raise DeployError(
            f"release {release.version} could not be installed; no host was switched, every "
            "host still runs what it ran:\n  " + "\n  ".join(problems)
        )
    return results


def release_room(release: Release) -> int:
    """Bytes a host needs free to install `release`: the archive, and what it unpacks to and
    installs (wheels, a virtualenv, the dashboard), measured at under 4x the archive."""
    return 5 * release.archive.stat().st_size


def _remove_incomplete(conn: Connection, release: Release) -> None:
    """A release directory without its manifest is an install cut short: remove it, and the
    archive uploaded for it (the install removes that only once it succeeds)."""
    d = shlex.quote(str(layout.release_dir(release.version)))
    archive = shlex.quote(str(incoming_path(release)))
    conn.run(f"rm -f {archive}; [ -e {d}/manifest.json ] || rm -rf {d}", check=False)


def _check_installed(hosts: Sequence[Host], opener: Opener, options: Options, version: str) -> None:
    for host in hosts:
        with opener(_target(host, options)) as conn:
            state = read_state(conn, ())
        if version not in state.releases:
            kept = ", ".join(state.releases) or "none"
            raise DeployError(
                f"release {version} is not installed on {host.name} (it has: {kept}): deploy it "
                "with `adpulse deploy`, which installs it first"
            )


def _roll_host(
    inv: StackInventory,
    host: Host,
    opener: Opener,
    balancer: Balancer,
    options: Options,
    contents: Mapping[str, Content],
    version: str,
    say: Say,
) -> HostOutcome:
    secrets = secret_values(inv)
    probes = host_step.host_probes(
        host.private_ip, inv.api_port, inv.dashboard_port, METRICS_PORT, options.max_lag
    )
    with opener(_target(host, options)) as conn:
        plan = plan_for(read_state(conn, contents), contents, version)
        if plan.empty:
            say(f"{host.name}: nothing to do (release {version} running, files as wanted)")
            return HostOutcome(host.name, plan, "unchanged")
        for line in describe(plan):
            say(f"{host.name}: {line}")
        event = {"event": "deploy-host", "stack": inv.stack, "host": host.name, "version": version}
        record(conn, {**event, "actions": describe(plan)}, secrets)
        restarting = bool(plan.restarts)
        if restarting:
            say(f"{host.name}: draining from the load balancer")
            balancer.drain(host)
        try:
            host_step.apply(conn, plan, contents)
            if restarting:
                host_step.wait_healthy(conn, probes, options.health_timeout_s, secrets)
                say(f"{host.name}: healthy; back into the load balancer")
                balancer.enable(host)
            verdict = _gate(probes, options.gate, say, host.name) if restarting else "files only"
        except AdpulseError as exc:
            if not isinstance(exc, HostStepError):
                exc = HostStepError(f"{host.name}: {exc}\n{host_step.diagnose(conn, secrets)}")
            back = _recover(conn, host, plan, balancer, probes, options, secrets, say)
            record(conn, {**event, "outcome": "rolled back", "why": type(exc).__name__}, secrets)
            raise DeployError(
                f"{exc}\n{back}\nstopped: hosts after {host.name} were not touched"
            ) from None
        host_step.commit(conn, plan)
        record(conn, {**event, "outcome": "deployed", "gate": verdict}, secrets)
    say(f"{host.name}: release {version} deployed ({verdict})")
    return HostOutcome(host.name, plan, verdict)


def _gate(probes: Probes, gate: Gate | None, say: Say, name: str) -> str:
    if gate is None:
        return "SLO gate skipped"
    api_metrics, consumer = probes.api_metrics, probes.consumer_metrics
    before = slo.sample(api_metrics, consumer)
    say(f"{name}: SLO gate: watching for {gate.window_s:g} s")
    time.sleep(gate.window_s)
    after = slo.sample(api_metrics, consumer)
    verdict = slo.gate(before, after, gate.p95_max_ms, gate.min_requests, gate.freshness_max_s)
    for note in verdict.notes:
        say(f"{name}: {note}")
    if verdict.outcome is slo.Outcome.FAIL:
        raise HostStepError(f"{name}: SLO gate failed: {'; '.join(verdict.reasons)}")
    if verdict.outcome is slo.Outcome.TOO_FEW:
        return "SLO gate not judged: " + "; ".join(verdict.reasons)
    p95 = f"P95 {verdict.p95_ms:.0f} ms over {verdict.requests} requests"
    return f"SLO gate passed: {p95}, freshness {verdict.freshness_s or 0:.1f} s"


def _recover(
    conn: Connection,
    host: Host,
    plan: Plan,
    balancer: Balancer,
    probes: Probes,
    options: Options,
    secrets: list[str],
    say: Say,
) -> str:
    """Take the host back to what it ran and, if that is healthy, back into the balancer."""
    say(f"{host.name}: rolling back")
    try:
        balancer.drain(host)
        did = host_step.roll_back(conn, plan)
        if plan.switch and not plan.switch_from:
            return did + "; it stays out of the load balancer"
        host_step.wait_healthy(conn, probes, options.health_timeout_s, secrets)
        balancer.enable(host)
        return did + ", healthy and back in the load balancer"
    except AdpulseError as exc:
        return f"rolling {host.name} back did not finish: {exc}; it stays out of the balancer"


def _prune(conn: Connection, say: Say) -> None:
    state = read_state(conn, ())
    if state.current is None:
        return
    old = layout.keep(list(state.releases), state.current)
    if old:
        dirs = " ".join(shlex.quote(str(layout.release_dir(v))) for v in old)
        conn.run(f"rm -rf {dirs}")
        say(f"{conn.target.name}: removed old releases {', '.join(old)}")


def previous_release(state: RemoteState) -> str | None:
    """The release installed before the current one, the default rollback target."""
    if state.current is None or state.current not in state.releases:
        return None
    index = state.releases.index(state.current)
    return state.releases[index - 1] if index > 0 else None


def all_hosts(inv: StackInventory) -> Iterator[Host]:
    yield from host_order(inv.app_hosts)
