"""The deploy's audit log on a host: one JSON object a line in /var/log/adpulse/audit.log.

Lines are appended with `cat >>` (O_APPEND): every write lands at the end, nothing written is
rewritten, and a line (a few hundred bytes, read by `cat` at once) is not split by another
writer's in practice; the deploy lock serialises writers anyway. The file is root:root 0640,
made on the first append. The log's order is the order things happened on that host; `at` is
the writer's UTC clock and is for people, not for ordering.

No secret ever goes in: an event is refused (AuditError, nothing written) when any key, at any
depth, names a secret (password, token, ...), or when any text in it contains one of the
`secrets` values the caller holds. The refusal never repeats the value.

Here too, since they are the lock plus its record: `locked` (a block run under the stack's
deploy lock) and `clear` (`adpulse deploy unlock`), each step written to the lock host's log.
"""

from __future__ import annotations

import getpass
import json
import shlex
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from adpulse.errors import AdpulseError
from deploy.layout import AUDIT_LOG, LOG_DIR
from deploy.lock import Holder, Lock, LockHeld, acquire, holder, release, unlock
from deploy.ssh import Connection

# Substrings of key names that say "this holds a secret"; compared case-insensitively with `-`
# read as `_`. Broad on purpose: `secret_arn` is refused too (call it `arn`), better than a leak.
DENIED_KEYS = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "private_key",
    "credential",
    "authorization",
    "cookie",
    "session_key",
)

_APPEND = (
    "set -e; log={log}; mkdir -p -m 0750 {folder}; "
    'if [ ! -e "$log" ]; then (umask 137; : >> "$log"); chown root:root "$log"; '
    'chmod 0640 "$log"; fi; cat >> "$log"'
)


def default_owner() -> str:
    """`user@machine` of whoever runs this: the lock's owner, the audit log's `by`."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


class AuditError(AdpulseError):
    """An audit event was refused (it named or held a secret, or is not JSON); nothing written."""


def _denied(key: str) -> str | None:
    name = key.lower().replace("-", "_")
    return next((word for word in DENIED_KEYS if word in name), None)


def _texts(value: Any, path: str) -> Iterator[tuple[str, str, bool]]:
    """(where, text, is_key) for every key and string in `value`, at any depth."""
    if isinstance(value, str):
        yield path, value, False
    elif isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            yield where, str(key), True
            yield from _texts(item, where)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _texts(item, f"{path}[{index}]")


def _refuse_secret(where: str) -> AuditError:
    return AuditError(
        f"audit event refused: {where} contains one of the stack's secret values; audit lines "
        "never hold secrets, so leave it out (or mask it) before recording"
    )


def check(event: Mapping[str, Any], secrets: Iterable[str] = ()) -> None:
    """Raise AuditError if `event` names a secret key or contains a `secrets` value."""
    values = [s for s in secrets if s]  # "" is in every text
    for where, text, is_key in _texts(event, ""):
        if is_key and (word := _denied(text)):
            raise AuditError(
                f"audit event refused: the key {where!r} names a secret ({word!r} is on the "
                "deny-list); audit lines never hold secrets, so leave it out of the event"
            )
        if any(value in text for value in values):
            raise _refuse_secret(repr(where))


def line(event: Mapping[str, Any], secrets: Iterable[str] = (), now: datetime | None = None) -> str:
    """The checked JSON line for `event` (with `at` first unless the event has one)."""
    secrets = list(secrets)
    check(event, secrets)
    stamped = dict(event)
    if "at" not in stamped:
        at = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        stamped = {"at": at, **stamped}
    try:
        text = json.dumps(stamped, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AuditError(f"audit event refused: it is not plain JSON ({exc})") from None
    # Again on the encoded line: a number (`"pid": 12345`) or JSON escaping must not get past.
    encoded = [json.dumps(s, ensure_ascii=False)[1:-1] for s in secrets if s]
    if any(value in text for value in encoded):
        raise _refuse_secret("the encoded line")
    return text + "\n"


def record(
    conn: Connection,
    event: Mapping[str, Any],
    secrets: Iterable[str] = (),
    now: datetime | None = None,
) -> str:
    """Append `event` as one line to the host's audit log; returns the line written.

    Raises AuditError before anything is sent when the event is refused, RemoteError when the
    host cannot write the file (a full disk, say)."""
    text = line(event, secrets, now)
    command = _APPEND.format(log=shlex.quote(str(AUDIT_LOG)), folder=shlex.quote(str(LOG_DIR)))
    conn.run(command, stdin=text.encode())
    return text


def read(conn: Connection, last: int = 20) -> list[dict[str, Any]]:
    """The host's last `last` audit events, oldest first ([] when there is no log yet).

    A line that is not a JSON object (cut short by a full disk, edited by hand) is returned as
    `{"unreadable": <the line>}` rather than dropped: an audit reader must see everything."""
    if last < 1:
        raise AuditError(f"read at least 1 audit line, not {last}")
    log = shlex.quote(str(AUDIT_LOG))
    out = conn.run(f"if [ -e {log} ]; then tail -n {int(last)} {log}; fi").stdout
    events: list[dict[str, Any]] = []
    for text in out.splitlines():
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        events.append(parsed if isinstance(parsed, dict) else {"unreadable": text})
    return events


@contextmanager
def locked(
    conn: Connection,
    stack: str,
    owner: str,
    version: str,
    command: str,
    secrets: Iterable[str] = (),
    now: datetime | None = None,
) -> Iterator[Lock]:
    """Hold the stack's lock for the block and release it however the block ends (an error,
    Ctrl-C), each step in the host's audit log. Raises LockHeld (recorded too) when someone
    else holds it. A release or audit failure after the block failed is added to that error as
    a note, never hiding it; after a block that succeeded it is raised."""
    secrets = list(secrets)
    entry = {"stack": stack, "owner": owner, "version": version}
    check({**entry, "command": command}, secrets)  # refused before the lock is taken
    try:
        lock = acquire(conn, stack, owner, version, command, now)
    except LockHeld as refused:
        info = refused.holder.info
        held_by = info["owner"] if info else None
        try:
            record(conn, {"event": "lock-refused", **entry, "held_by": held_by}, secrets, now)
        except AdpulseError as exc:
            refused.add_note(f"and the audit log was not written: {exc}")
        raise
    entry["lock_id"] = json.loads(lock.info)["lock_id"]
    try:
        record(conn, {"event": "lock", **entry, "command": command}, secrets, now)
        yield lock
    except BaseException as exc:
        if problem := _finish(conn, lock, entry, f"failed ({type(exc).__name__})", secrets, now):
            exc.add_note(f"and then: {problem}")
        raise
    if problem := _finish(conn, lock, entry, "ok", secrets, now):
        raise problem


def _finish(
    conn: Connection,
    lock: Lock,
    entry: dict[str, str],
    outcome: str,
    secrets: list[str],
    now: datetime | None,
) -> AdpulseError | None:
    """Release, then record it; the first thing that went wrong, or None."""
    problem: AdpulseError | None = None
    try:
        release(conn, lock)
    except AdpulseError as exc:  # LockError, or the host gone (SshError, RemoteError)
        problem = exc
    event = {"event": "unlock", **entry, "outcome": outcome, "released": problem is None}
    try:
        record(conn, event, secrets, now)
    except AdpulseError as exc:
        problem = problem or exc
    return problem


def clear(
    conn: Connection,
    stack: str,
    by: str,
    confirm: Callable[[Holder], bool],
    secrets: Iterable[str] = (),
) -> tuple[Holder | None, bool]:
    """`adpulse deploy unlock`: `confirm` sees who holds the lock and says whether to clear it.

    Returns (the holder, whether it was cleared); (None, False) when nobody held it. Clears
    only the lock that was shown: one taken since raises LockHeld naming its holder."""
    held = holder(conn)
    if held is None or not confirm(held):
        return held, False
    unlock(conn, stack, force=True, seen=held)
    info = held.info or {}
    event = {"event": "lock-cleared", "stack": stack, "by": by, "held_by": info.get("owner")}
    event |= {k: info.get(k) for k in ("version", "started_at", "pid", "lock_id")}
    record(conn, {**event, "held_since": f"{held.since:%Y-%m-%dT%H:%M:%SZ}"}, secrets)
    return held, True
