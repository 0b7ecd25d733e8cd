"""Ready an app host for its first release: the service user and the layout's directories, and
room on the disk before a release is uploaded.

`prepare` is idempotent and says what it changed (or, with `dry_run`, what it would change), one
line each, for the deploy's plan: a host that is ready gives no lines. It creates the system
user and group `adpulse` (no login shell, no home), and every `layout.DIRECTORIES` entry with its
mode and owner, repairing a mode or owner that drifted. A path there that is not a directory (a
file, a symlink) is refused, not replaced: root would otherwise chown or write through it.
"""

from __future__ import annotations

import shlex

from adpulse.errors import AdpulseError
from deploy import layout
from deploy.ssh import Connection

NOLOGIN = "/usr/sbin/nologin"
HOME = "/nonexistent"  # Debian's home for system users that have none; never created

_USER = (
    "user={user}; group={group}; "
    'if ! getent group "$group" >/dev/null; then echo "create group $group (system)"; '
    'act groupadd --system "$group"; fi; '
    'if ! getent passwd "$user" >/dev/null; then '
    'echo "create user $user (system, group $group, no login shell, no home)"; '
    "act useradd --system --no-create-home --home-dir {home} --shell {nologin} "
    '--gid "$group" "$user"; '
    'else shell=$(getent passwd "$user" | cut -d: -f7); if [ "$shell" != {nologin} ]; then '
    'echo "set the login shell of $user: $shell -> {nologin}"; '
    'act usermod --shell {nologin} "$user"; fi; fi'
)
_DIRECTORY = (  # a shell function: directory PATH MODE OWNER
    'directory() {{ p=$1; mode=$2; owner=$3; if [ -L "$p" ] || {{ [ -e "$p" ] && [ ! -d "$p" ]; '
    '}}; then echo "$p exists but is not a directory: move it away, then run again" >&2; '
    'exit 3; fi; if [ ! -e "$p" ]; then echo "create $p $mode $owner"; '
    'act install -d -m "$mode" -o "${{owner%%:*}}" -g "${{owner#*:}}" "$p"; return; fi; '
    "set -- $(stat -c '%a %U:%G' \"$p\"); "
    'if [ "$1" != "$mode" ]; then echo "chmod $p $1 -> $mode"; act chmod "$mode" "$p"; fi; '
    'if [ "$2" != "$owner" ]; then echo "chown $p $2 -> $owner"; act chown "$owner" "$p"; fi; }}'
)


class PrepareError(AdpulseError):
    """A host cannot be made ready for a release; the message names the host and what to do."""


class DiskFull(PrepareError):
    """Too little free space for a release; carries the bytes free and needed."""

    def __init__(self, message: str, free: int, need: int) -> None:
        super().__init__(message)
        self.free, self.need = free, need


def prepare_script(dry_run: bool = False) -> str:
    """The shell script `prepare` runs: one line on stdout per change (made or, with
    `dry_run`, that would be made)."""
    q = shlex.quote
    parts = [
        "set -eu",
        "umask 022",
        'act() { "$@"; }' if not dry_run else "act() { :; }",
        _USER.format(
            user=q(layout.SERVICE_USER),
            group=q(layout.SERVICE_GROUP),
            home=q(HOME),
            nologin=q(NOLOGIN),
        ),
        _DIRECTORY.format(),
    ]
    parts += [f"directory {q(str(d.path))} {d.mode:o} {q(d.owner)}" for d in layout.DIRECTORIES]
    return "\n".join(parts)


def prepare(conn: Connection, *, dry_run: bool = False) -> list[str]:
    """Make the service user and the layout's directories on the host, repairing modes and
    owners; returns what changed (with `dry_run`: what would change, nothing touched), one line
    each, [] when the host was ready. Raises PrepareError naming the host and the problem."""
    done = conn.run(prepare_script(dry_run), check=False, timeout=120)
    if done.code != 0:
        why = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise PrepareError(f"{conn.target.name}: cannot prepare the host for adpulse: {why}")
    return done.stdout.splitlines()


def check_disk(conn: Connection, path: str, need_bytes: int) -> int:
    """Raise DiskFull unless the file system holding `path` (or its nearest existing parent)
    has `need_bytes` free for root; returns the bytes free. The deploy calls it before uploading
    a release, with room for the archive and what it unpacks to."""
    free, mount = conn.free_bytes(path)
    if free < need_bytes:
        raise DiskFull(
            f"{conn.target.name}: {path} has {_size(free)} free ({free} bytes, on {mount}), the "
            f"release needs {_size(need_bytes)} ({need_bytes} bytes): nothing was uploaded; "
            f"free space on {mount} (old releases under {layout.RELEASES} that are neither "
            "current nor the one before go first), then deploy again",
            free,
            need_bytes,
        )
    return free


def _size(n: int) -> str:
    """`4.9 MiB`, `1.2 GiB`: for people; the message gives the exact bytes too."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
