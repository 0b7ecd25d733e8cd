"""Read what a deploy needs to know of one app host, in one SSH round trip.

Files (checksum, mode, owner) of the paths the deploy manages, where `current` points, the
releases installed (oldest first), and per unit: its state, MainPID, the release that process
runs (`/proc/<pid>/cwd`, `layout.release_of`) and `ActiveEnterTimestamp` (when it last
started: the proof that a deploy restarted nothing).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from deploy import layout
from deploy.plan import FileState, HostState
from deploy.release import MANIFEST
from deploy.ssh import Connection

_SCRIPT = """\
for p in {paths}; do
  if [ -e "$p" ]; then
    printf 'file\\t%s\\t%s\\t%s\\n' "$p" "$(stat -c '%a %U:%G' "$p")" \
      "$(sha256sum < "$p" | cut -c1-64)"
  fi
done
printf 'current\\t%s\\n' "$(readlink {current} 2>/dev/null || true)"
for m in $(ls -1 {releases}/*/{manifest} 2>/dev/null); do
  printf 'release\\t%s\\t%s\\n' "$(stat -c %Y "$m")" "$(basename "$(dirname "$m")")"
done
for u in {units}; do
  show=$(systemctl show -p ActiveState -p SubState -p MainPID -p ActiveEnterTimestampMonotonic \
    -p LoadState "$u" 2>/dev/null | tr '\\n' ' ')
  pid=$(systemctl show -p MainPID --value "$u" 2>/dev/null || echo 0)
  cwd=""
  if [ -n "$pid" ] && [ "$pid" != 0 ]; then cwd=$(readlink "/proc/$pid/cwd" || true); fi
  printf 'unit\\t%s\\t%s\\t%s\\n' "$u" "$cwd" "$show"
done
"""


@dataclass(frozen=True)
class UnitState:
    unit: str
    active: str  # ActiveState: active, failed, inactive, activating
    sub: str  # SubState: running, dead, auto-restart
    loaded: bool
    main_pid: int
    release: str | None  # the release its process runs
    started_us: int  # ActiveEnterTimestampMonotonic: changes on every (re)start


@dataclass(frozen=True)
class RemoteState:
    files: Mapping[str, FileState]
    current: str | None  # the release `current` points at
    releases: tuple[str, ...]  # complete releases, oldest install first
    units: Mapping[str, UnitState]

    def host_state(self) -> HostState:
        running = {u: s.release if s.active == "active" else None for u, s in self.units.items()}
        return HostState(self.files, self.current, running)


def units() -> tuple[str, ...]:
    return tuple(layout.unit_name(s) for s in layout.SERVICES)


def read_state(conn: Connection, paths: Iterable[str]) -> RemoteState:
    """The host's state for `paths` and every adpulse unit."""
    script = _SCRIPT.format(
        paths=" ".join(shlex.quote(p) for p in sorted(paths)) or "''",
        current=shlex.quote(str(layout.CURRENT)),
        releases=shlex.quote(str(layout.RELEASES)),
        manifest=MANIFEST,
        units=" ".join(units()),
    )
    return parse_state(conn.run(script, timeout=60).stdout)


def parse_state(text: str) -> RemoteState:
    files: dict[str, FileState] = {}
    current: str | None = None
    installed: list[tuple[int, str]] = []
    found: dict[str, UnitState] = {}
    for line in text.splitlines():
        kind, _, rest = line.partition("\t")
        if kind == "file":
            path, mode_owner, digest = rest.split("\t")
            mode, owner = mode_owner.split(" ")
            files[path] = FileState(digest, int(mode, 8), owner)
        elif kind == "current":
            current = layout.release_of(rest + "/") if rest else None
        elif kind == "release":
            stamp, name = rest.split("\t")
            if layout.is_version(name):
                installed.append((int(stamp), name))
        elif kind == "unit":
            unit, cwd, show = rest.split("\t")
            props = dict(item.split("=", 1) for item in show.split() if "=" in item)
            found[unit] = UnitState(
                unit=unit,
                active=props.get("ActiveState", "unknown"),
                sub=props.get("SubState", "unknown"),
                loaded=props.get("LoadState") == "loaded",
                main_pid=int(props.get("MainPID", "0") or 0),
                release=layout.release_of(cwd) if cwd else None,
                started_us=int(props.get("ActiveEnterTimestampMonotonic", "0") or 0),
            )
    releases = tuple(name for _, name in sorted(installed))
    return RemoteState(files, current, releases, found)
