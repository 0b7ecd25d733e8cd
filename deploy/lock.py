"""The stack's deploy lock: a directory on the stack's first app host, made with `mkdir`.

`mkdir` creates it or fails because it exists, in one system call: of two racing deployers
exactly one wins. Its `info.json` names the holder (owner, version, started_at, pid, command,
and a random `lock_id`). A lock is removed only while info.json is what the remover saw, so a
deploy whose lock was cleared never frees the next one's (Deployer's PR #958 did).

It lives in root's own directory (`/var/lib/adpulse-deploy`, 0700), not in the services'
writable state: a compromised service can neither forge nor delete it. Removal is atomic: the
lock is first renamed to a name of its own (rename(2): of two removers one gets it), then its
info.json is checked there; one that turns out not to be ours is put back under the lock's name
with a rename that never replaces (`mv -n`: renameat2 RENAME_NOREPLACE), and if a new lock took
the name meanwhile, the one moved aside is kept and reported, never deleted.

Ages are readings of one clock, the lock host's (`started_at` is its time when taken): deployers
whose laptops disagree still see one age, and a lock without info.json is dated by its
directory's mtime, which only that clock can be compared with. Tests pin it with `now`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from adpulse.errors import AdpulseError
from deploy.inventory import StackInventory, host_order
from deploy.layout import AUDIT_LOG, DEPLOY_STATE_DIR
from deploy.ssh import Connection, Target

STALE_AFTER = timedelta(hours=2)  # far past any healthy rolling deploy; a human still decides
LOCK_DIR = DEPLOY_STATE_DIR / "deploy.lock"
_Q = {"dir": shlex.quote(str(LOCK_DIR)), "parent": shlex.quote(str(DEPLOY_STATE_DIR))}
_ACQUIRE = (  # stdin: info.json; failing to write it (a full disk) removes the directory
    "dir={dir}; [ -d {parent} ] || mkdir -p -m 0700 {parent}; "
    'if err=$(mkdir -m 0755 "$dir" 2>&1); then if err=$({{ cat > "$dir/info.json.tmp" && '
    'mv -f "$dir/info.json.tmp" "$dir/info.json"; }} 2>&1); then echo acquired; exit 0; fi; '
    # rmdir, not rm -rf: if someone else's info.json is in there by now, it is theirs
    'rm -f "$dir/info.json.tmp"; rmdir "$dir" 2>/dev/null; '
    'echo "cannot write $dir/info.json: $err" >&2; exit 1; fi; '
    'if [ -d "$dir" ]; then echo held; exit 0; fi; echo "$err" >&2; exit 1'
).format(**_Q)
_DIGEST = '{{ sha256sum < "$1/info.json"; }} 2>/dev/null | cut -c1-64'  # inside .format
_HOLDER = (  # a lock < 5 s old without info.json is a deployer about to write it: wait 3 s
    'dir={dir}; now=$(date -u +%s); mtime=$(stat -c %Y "$dir" 2>/dev/null) || '
    '{{ printf "none\\n%s\\n" "$now"; exit 0; }}; '
    'if [ ! -s "$dir/info.json" ] && [ $((now - mtime)) -lt 5 ]; then i=0; '
    'while [ ! -s "$dir/info.json" ] && [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done; fi; '
    "digest() {{ " + _DIGEST + '; }}; digest=$(digest "$dir"); '
    'content=$(cat "$dir/info.json" 2>/dev/null; echo x); '
    '[ -d "$dir" ] || {{ printf "none\\n%s\\n" "$now"; exit 0; }}; '
    'printf "held\\n%s\\n%s\\n%s\\n%s" "$now" "$mtime" "${{digest:-missing}}" "${{content%x}}"'
).format(**_Q)
_REMOVE = (  # after `expected=<digest>; `; prints removed, gone, changed, or `aside <path>`
    "dir={dir}; digest() {{ d=$(" + _DIGEST + '); echo "${{d:-missing}}"; }}; '
    '[ -d "$dir" ] || {{ echo gone; exit 0; }}; '
    '[ "$(digest "$dir")" = "$expected" ] || {{ echo changed; exit 0; }}; '
    "aside=$(mktemp -u {parent}/.deploy.lock.removing.XXXXXX); "
    'mv -T "$dir" "$aside" 2>/dev/null || {{ echo gone; exit 0; }}; '
    'if [ "$(digest "$aside")" = "$expected" ]; then rm -rf "$aside" && echo removed; exit 0; fi; '
    # replaced between the look and the rename: not ours, so back it goes unless a lock is there
    'mv -n -T "$aside" "$dir" 2>/dev/null; '
    'if [ -e "$aside" ]; then echo "aside $aside"; else echo changed; fi'
).format(**_Q)


class LockError(AdpulseError):
    """The deploy lock could not be taken, released or cleared; the message says what to do."""


class LockHeld(LockError):
    """Someone else holds the stack's deploy lock; the message names them and how to clear it."""

    def __init__(self, message: str, holder: Holder) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class Lock:
    """A lock this process took: `info` is the exact info.json it wrote."""

    stack: str
    host: str
    info: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.info.encode()).hexdigest()


@dataclass(frozen=True)
class Holder:
    """Who holds the lock, as read from the host; `info` is None when info.json is unreadable."""

    since: datetime  # started_at, or the lock directory's mtime for an unknown deployer
    age: timedelta
    digest: str  # of info.json as read, "missing" without one: what compare-and-remove checks
    info: dict[str, Any] | None = None

    @property
    def stale(self) -> bool:
        return self.age >= STALE_AFTER

    def describe(self) -> str:
        """`alice@laptop (version abc123, started 12 min ago, `adpulse deploy --stack prod`)`."""
        if self.info is None:
            return (
                f"an unknown deployer since {self.since:%Y-%m-%d %H:%M} UTC ({ago(self.age)}; "
                "the lock has no readable info.json: a deploy that died right after taking it?)"
            )
        i = self.info
        return f"{i['owner']} (version {i['version']}, started {ago(self.age)}, `{i['command']}`)"


def lock_target(inv: StackInventory, user: str) -> Target:
    """The host that keeps the stack's lock: its first app host by name."""
    if not inv.app_hosts:
        raise LockError(f"stack {inv.stack} has no app hosts, so no host to keep its deploy lock")
    first = host_order(inv.app_hosts)[0]
    return Target(first.name, first.private_ip, user=user)


def ago(age: timedelta) -> str:
    """`42 s ago`, `12 min ago`, `3 h 5 min ago`, `4 days ago`."""
    seconds = max(0, int(age.total_seconds()))
    hours, minutes = divmod(seconds // 60, 60)
    if hours >= 48:
        return f"{hours // 24} days ago"
    if hours:
        return f"{hours} h {minutes} min ago"
    return f"{minutes} min ago" if seconds >= 60 else f"{seconds} s ago"


def held_message(stack: str, held: Holder) -> str:
    """The one line a refused deployer sees: who, since when, and how to clear it."""
    unlock = f"clear it with `adpulse deploy unlock --stack {stack}`"
    if held.info is None:
        return f"stack {stack} is held by {held.describe()}; if no deploy runs, {unlock}"
    if not held.stale:
        return (
            f"stack {stack} is being deployed by {held.describe()}; wait for it, or if that "
            f"deploy died, {unlock}"
        )
    process = f"pid {held.info.get('pid')} on {str(held.info['owner']).rpartition('@')[2] or '?'}"
    return (
        f"stack {stack} is locked by {held.describe()}; stale: older than "
        f"{STALE_AFTER.total_seconds() / 3600:g} h, so that deploy most likely died; if it "
        f"({process}) is no longer running, {unlock}"
    )


def _parse_info(text: str) -> dict[str, Any] | None:
    """info.json with `started` added, or None if it is not one (then: an unknown deployer)."""
    try:
        info = dict(json.loads(text))
        info["started"] = datetime.fromisoformat(info["started_at"]).astimezone(UTC)
        if all(isinstance(info[k], str) for k in ("owner", "version", "command")):
            return info
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    return None


def holder(conn: Connection, now: datetime | None = None) -> Holder | None:
    """Who holds the lock on this host, or None when nobody does."""
    status, host_now, *rest = conn.run(_HOLDER).stdout.split("\n", 4)
    if status != "held":
        return None
    mtime, digest, content = rest
    info = _parse_info(content)
    since = info.pop("started") if info else datetime.fromtimestamp(int(mtime), UTC)
    reference = now or datetime.fromtimestamp(int(host_now), UTC)
    return Holder(since, reference - since, digest, info)


def acquire(
    conn: Connection,
    stack: str,
    owner: str,
    version: str,
    command: str,
    now: datetime | None = None,
) -> Lock:
    """Take the stack's lock on this host or raise LockHeld naming who holds it (never waits).

    `command` goes into info.json and the audit log as it is: never a secret in it."""
    started = now or datetime.fromtimestamp(int(conn.run("date -u +%s").stdout), UTC)
    info = {
        "owner": owner,
        "version": version,
        "started_at": f"{started.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
        "pid": os.getpid(),
        "command": command,
        "lock_id": os.urandom(8).hex(),
    }
    lock = Lock(stack, conn.target.name, json.dumps(info, sort_keys=True) + "\n")
    for _ in range(3):  # a lock released between our mkdir and our look is tried again
        done = conn.run(_ACQUIRE, stdin=lock.info.encode(), check=False)
        if done.code != 0:  # no space, a read-only disk: the host's own words
            why = "; ".join(done.stderr.strip().splitlines())
            raise LockError(f"stack {stack}: cannot take the deploy lock on {lock.host}: {why}")
        if done.stdout.strip() == "acquired":
            return lock
        held = holder(conn, now)
        if held is not None:
            raise LockHeld(held_message(stack, held), held)
    raise LockError(
        f"stack {stack}: the deploy lock on {conn.target.name} came and went three times while "
        "this deploy tried to take it: other deploys are starting and stopping; try again"
    )


def _remove(conn: Connection, stack: str, digest: str) -> str:
    """`removed`, `gone` (no lock), `changed` (another lock, left as it was), or raises
    LockError when another lock had to be moved aside and a new one took its place."""
    outcome = conn.run(f"expected={shlex.quote(digest)}; {_REMOVE}").stdout.strip()
    if outcome.startswith("aside "):
        host, aside = conn.target.name, outcome.removeprefix("aside ")
        raise LockError(
            f"stack {stack}: the deploy lock on {host} was replaced while it was being removed, "
            "and a new lock was taken before it could be put back; the replaced one is kept in "
            f"{aside} on {host}: nothing else changed; check who deploys (audit log: "
            f"{host}:{AUDIT_LOG}) before going on"
        )
    return outcome


def release(conn: Connection, lock: Lock) -> None:
    """Remove the lock if it is still `lock`; otherwise leave it and raise LockError naming
    whoever holds it now (or saying it was cleared)."""
    outcome = _remove(conn, lock.stack, lock.digest)
    if outcome == "removed":
        return
    held = holder(conn) if outcome == "changed" else None
    now = f"is held by {held.describe()}" if held else "was cleared (`adpulse deploy unlock`)"
    raise LockError(
        f"stack {lock.stack}: this deploy's lock on {lock.host} {now} while it ran: nothing "
        f"released; another deploy may have run meanwhile (audit log: {lock.host}:{AUDIT_LOG})"
    )


def unlock(
    conn: Connection,
    stack: str,
    force: bool = False,
    seen: Holder | None = None,
    now: datetime | None = None,
) -> Holder | None:
    """Clear the lock; returns who held it (None: nobody did).

    Without `force` only a stale or unknown deployer's lock is cleared; a fresh one (its deploy
    may still run) raises LockHeld. With `seen` (what a person confirmed), a lock that changed
    since is left alone and raises LockHeld naming the new holder."""
    held = holder(conn, now)
    if held is None:
        return None
    if seen is not None and held.digest != seen.digest:
        raise LockHeld(
            f"stack {stack}: the lock changed since it was shown; it is now held by "
            f"{held.describe()}; nothing cleared: run the unlock again to see it",
            held,
        )
    if not force and held.info is not None and not held.stale:
        raise LockHeld(held_message(stack, held) + " (not stale yet: needs force)", held)
    if _remove(conn, stack, held.digest) == "changed":
        return unlock(conn, stack, force, seen or held, now)  # raises, naming the new holder
    return held
