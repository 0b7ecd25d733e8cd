"""What a deploy changes on one host: files to write, the `current` switch, units to restart.

Pure: the desired files and the host's state in, a `Plan` out; the SSH side gathers the state
(checksums, modes, owners, where `current` points, each unit's running release) and carries the
plan out. A unit restarts only when its unit file, an environment file it reads, or the release
it runs changed: deploying the same version again, with the same settings, restarts nothing.
A file whose mode or owner alone is wrong is repaired without a restart: the service would
read the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from deploy import layout


@dataclass(frozen=True)
class FileState:
    """A file as it is, or should be, on a host."""

    sha256: str
    mode: int
    owner: str  # user:group


@dataclass(frozen=True)
class HostState:
    """What the deploy found on the host.

    `files` holds the desired paths that exist (absent: missing). `release` is where `current`
    points, None on a fresh host. `running` maps a unit to the release its process runs
    (`layout.release_of` of /proc/<MainPID>/cwd); a unit absent or None is not running.
    """

    files: Mapping[str, FileState]
    release: str | None
    running: Mapping[str, str | None]


@dataclass(frozen=True)
class FileWrite:
    path: str
    reasons: tuple[str, ...]  # "new", "content changed", "mode 0644 -> 0600", "owner a -> b"
    content_changed: bool


@dataclass(frozen=True)
class Restart:
    unit: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    version: str
    writes: tuple[FileWrite, ...]
    switch_from: str | None  # the old target of `current`, when it moves
    switch: bool
    daemon_reload: bool
    restarts: tuple[Restart, ...]

    @property
    def empty(self) -> bool:
        return not (self.writes or self.switch or self.restarts)


def file_state(content: str | bytes, mode: int, owner: str) -> FileState:
    data = content.encode("utf-8") if isinstance(content, str) else content
    return FileState(hashlib.sha256(data).hexdigest(), mode, owner)


def units_reading(path: str) -> tuple[str, ...]:
    """The units that read `path`: its own unit file or secret env file, else all of them
    (common.env, the topology file, the ClickHouse CA: every service reads them at start)."""
    for service in layout.SERVICES:
        if path in (str(layout.unit_path(service)), str(layout.service_env(service))):
            return (layout.unit_name(service),)
    return tuple(layout.unit_name(s) for s in layout.SERVICES)


def compute_plan(desired: Mapping[str, FileState], host: HostState, version: str) -> Plan:
    """The plan that brings `host` to `desired` files running release `version`."""
    layout.check_version(version)
    writes = []
    changed_for: dict[str, list[str]] = {}
    for path in sorted(desired):
        want, have = desired[path], host.files.get(path)
        if have is None:
            reasons, content_changed = ["new"], True
        else:
            content_changed = have.sha256 != want.sha256
            reasons = ["content changed"] if content_changed else []
            if have.mode != want.mode:
                reasons.append(f"mode {have.mode:04o} -> {want.mode:04o}")
            if have.owner != want.owner:
                reasons.append(f"owner {have.owner} -> {want.owner}")
        if not reasons:
            continue
        writes.append(FileWrite(path, tuple(reasons), content_changed))
        if content_changed:
            what = (
                "unit file"
                if path.endswith(".service")
                else "environment file"
                if path.endswith(".env")
                else "file"
            )
            for unit in units_reading(path):
                changed_for.setdefault(unit, []).append(f"{what} {path} {reasons[0]}")

    restarts = []
    for service in layout.SERVICES:
        unit = layout.unit_name(service)
        reasons = list(changed_for.get(unit, []))
        running = host.running.get(unit)
        if running is None:
            reasons.append("not running")
        elif running != version:
            reasons.append(f"runs release {running}, not {version}")
        if reasons:
            restarts.append(Restart(unit, tuple(reasons)))

    return Plan(
        version=version,
        writes=tuple(writes),
        switch_from=host.release if host.release != version else None,
        switch=host.release != version,
        daemon_reload=any(w.content_changed and w.path.endswith(".service") for w in writes),
        restarts=tuple(restarts),
    )


def describe(plan: Plan) -> list[str]:
    """One line per action, for `--dry-run` and the audit log. No contents, no checksums:
    a secret file's checksum would let anyone who reads the log test guesses of the secret."""
    if plan.empty:
        return [f"nothing to do: release {plan.version} is running and every file is as wanted"]
    lines = []
    if plan.switch:
        was = plan.switch_from or "nothing (first deploy)"
        lines.append(f"switch {layout.CURRENT} from {was} to release {plan.version}")
    lines += [f"write {w.path} ({', '.join(w.reasons)})" for w in plan.writes]
    if plan.daemon_reload:
        lines.append("systemctl daemon-reload (unit files changed)")
    lines += [f"restart {r.unit}: {'; '.join(r.reasons)}" for r in plan.restarts]
    return lines
