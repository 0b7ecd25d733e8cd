"""deploy.lock and deploy.audit against real Debian hosts: one winner of a race, owner-checked
and atomic release and unlock, a lock out of the services' reach, stale and unknown locks
reported with owner and age, an audit log that takes lines and refuses secrets."""

from __future__ import annotations

import json
import os
import shlex
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploy import audit, lock
from deploy.audit import AuditError, locked
from deploy.lock import Holder, Lock, LockError, LockHeld, acquire, holder, release, unlock
from deploy.ssh import Connection, Target, connect
from tests.support.hosts import Host

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
COMMAND = "adpulse deploy --stack prod"
LOCK_DIR = str(lock.LOCK_DIR)
LOCK_PARENT = "/var/lib/adpulse-deploy"
AUDIT_LOG = "/var/log/adpulse/audit.log"


def known(tmp_path: Path, host: Host) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(host.known_hosts_line + "\n")
    return path


@pytest.fixture
def host(test_hosts: list[Host]) -> Iterator[Host]:
    """The second test host, with no lock and no audit log before and after the test."""
    chosen = test_hosts[1]
    clean = f"rm -rf {LOCK_PARENT} {AUDIT_LOG}"
    assert chosen.ssh(clean).returncode == 0
    yield chosen
    assert chosen.ssh(clean).returncode == 0


@pytest.fixture
def conn(host: Host, tmp_path: Path) -> Iterator[Connection]:
    target = Target(host.name, host.ip, user="root")
    with connect(target, "prod", known(tmp_path, host), host.ssh_key_path) as c:
        yield c


def race(host: Host, tmp_path: Path) -> tuple[list[Lock], list[LockHeld]]:
    """alice and bob take the lock at the same moment, each over its own connection."""
    path = known(tmp_path, host)
    start = threading.Barrier(2)
    wins: list[Lock] = []
    losses: list[LockHeld] = []
    errors: list[BaseException] = []

    def attempt(owner: str) -> None:
        try:
            target = Target(host.name, host.ip, user="root")
            with connect(target, "prod", path, host.ssh_key_path) as c:
                start.wait(timeout=30)
                wins.append(acquire(c, "prod", owner, "abc123", COMMAND, now=T0))
        except LockHeld as held:
            losses.append(held)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=attempt, args=(o,)) for o in ("alice@a", "bob@b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return wins, losses


def test_of_two_deployers_racing_exactly_one_wins_and_the_other_is_told_who(
    host: Host, tmp_path: Path
) -> None:
    for _ in range(5):
        wins, losses = race(host, tmp_path)
        assert len(wins) == 1 and len(losses) == 1
        winner = json.loads(wins[0].info)["owner"]
        assert f"stack prod is being deployed by {winner} (version abc123" in str(losses[0])
        assert host.ssh(f"rm -rf {LOCK_DIR}").returncode == 0


def test_the_race_test_catches_a_lock_that_checks_then_creates(
    host: Host, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Deployer's lock before it was fixed: look, then write. Both deployers look first.
    check_then_act = (
        f"if [ -d {LOCK_DIR} ]; then echo held; exit 0; fi; sleep 0.5; "
        f"mkdir -p {LOCK_DIR}; cat > {LOCK_DIR}/info.json; echo acquired"
    )
    monkeypatch.setattr(lock, "_ACQUIRE", check_then_act)
    wins, _ = race(host, tmp_path)
    assert len(wins) == 2


def test_a_held_lock_names_owner_version_age_and_how_to_clear_it(conn: Connection) -> None:
    acquire(conn, "prod", "alice@laptop", "abc123", COMMAND, now=T0)
    with pytest.raises(LockHeld) as err:
        acquire(conn, "prod", "bob@desk", "def456", COMMAND, now=T0 + timedelta(minutes=12))
    assert str(err.value) == (
        "stack prod is being deployed by alice@laptop (version abc123, started 12 min ago, "
        "`adpulse deploy --stack prod`); wait for it, or if that deploy died, clear it with "
        "`adpulse deploy unlock --stack prod`"
    )
    assert "\n" not in str(err.value)


def test_a_stale_lock_is_called_stale_and_still_refused(conn: Connection) -> None:
    taken = acquire(conn, "prod", "alice@laptop", "abc123", COMMAND, now=T0)
    with pytest.raises(LockHeld) as err:
        acquire(conn, "prod", "bob@desk", "def456", COMMAND, now=T0 + timedelta(hours=3, minutes=5))
    assert str(err.value) == (
        "stack prod is locked by alice@laptop (version abc123, started 3 h 5 min ago, "
        "`adpulse deploy --stack prod`); stale: older than 2 h, so that deploy most likely "
        f"died; if it (pid {os.getpid()} on laptop) is no longer running, clear it with "
        "`adpulse deploy unlock --stack prod`"
    )
    assert conn.run(f"cat {LOCK_DIR}/info.json").stdout == taken.info  # a human decides


def test_a_lock_without_info_is_held_by_an_unknown_deployer_since_its_mtime(
    conn: Connection,
) -> None:
    conn.run(f"mkdir -p {LOCK_DIR} && touch -d @{int(T0.timestamp())} {LOCK_DIR}")
    with pytest.raises(LockHeld) as err:
        acquire(conn, "prod", "bob@desk", "def456", COMMAND, now=T0 + timedelta(minutes=30))
    assert str(err.value).startswith(
        "stack prod is held by an unknown deployer since 2024-05-01 10:00 UTC (30 min ago; "
    )
    assert str(err.value).endswith("clear it with `adpulse deploy unlock --stack prod`")
    # a garbled info.json is unknown too, never guessed at
    conn.run(f"echo '{{not json' > {LOCK_DIR}/info.json")
    held = holder(conn, now=T0)
    assert held is not None and held.info is None


def test_a_lock_whose_info_is_still_being_written_is_waited_for_not_called_unknown(
    conn: Connection,
) -> None:
    info = json.dumps({"owner": "carol@slow", "version": "v1", "started_at": "2024-05-01T10:00Z"})
    conn.put("/tmp/info.json", (info[:-1] + ', "command": "x", "pid": 1}').encode())
    conn.run(
        f"mkdir -p {LOCK_DIR}; setsid sh -c 'sleep 1; cp /tmp/info.json {LOCK_DIR}/i.tmp; "
        f"mv {LOCK_DIR}/i.tmp {LOCK_DIR}/info.json' </dev/null >/dev/null 2>&1 &"
    )
    with pytest.raises(LockHeld, match="being deployed by carol@slow"):
        acquire(conn, "prod", "bob@desk", "def456", COMMAND, now=T0)


def test_a_full_disk_is_one_clear_error_and_leaves_no_half_made_lock(conn: Connection) -> None:
    conn.run(
        f"mkdir -p {LOCK_PARENT} && mount -t tmpfs -o size=64k,mode=0700 tmpfs {LOCK_PARENT} && "
        f"{{ dd if=/dev/zero of={LOCK_PARENT}/fill bs=4k 2>/dev/null || true; }}"
    )
    try:
        with pytest.raises(LockError) as err:
            acquire(conn, "prod", "alice@laptop", "abc123", COMMAND, now=T0)
        assert conn.run(f"test -e {LOCK_DIR}", check=False).code == 1
    finally:
        conn.run(f"umount {LOCK_PARENT}")
    assert str(err.value) == (
        f"stack prod: cannot take the deploy lock on {conn.target.name}: cannot write "
        f"{LOCK_DIR}/info.json: cat: write error: No space left on device"
    )


def test_only_the_owner_releases_and_a_cleared_lock_is_said_to_be(conn: Connection) -> None:
    alices = acquire(conn, "prod", "alice@laptop", "abc123", COMMAND, now=T0)
    forged = Lock("prod", conn.target.name, alices.info.replace("alice", "mallory"))
    with pytest.raises(LockError, match=r"is held by alice@laptop \(version abc123"):
        release(conn, forged)
    assert conn.run(f"cat {LOCK_DIR}/info.json").stdout == alices.info
    release(conn, alices)
    assert conn.run(f"test -e {LOCK_DIR}", check=False).code == 1
    with pytest.raises(LockError, match=r"was cleared .* while it ran: nothing released"):
        release(conn, alices)


def test_unlock_clears_stale_locks_and_fresh_ones_only_when_forced(conn: Connection) -> None:
    assert unlock(conn, "prod", now=T0) is None
    acquire(conn, "prod", "alice@laptop", "abc123", COMMAND, now=T0)
    with pytest.raises(LockHeld, match="not stale yet: needs force"):
        unlock(conn, "prod", now=T0 + timedelta(minutes=5))
    cleared = unlock(conn, "prod", now=T0 + timedelta(hours=2))
    assert cleared is not None and cleared.info is not None
    assert cleared.info["owner"] == "alice@laptop" and cleared.age == timedelta(hours=2)
    assert conn.run(f"test -e {LOCK_DIR}", check=False).code == 1
    acquire(conn, "prod", "bob@desk", "def456", COMMAND, now=T0)
    forced = unlock(conn, "prod", force=True, now=T0)
    assert forced is not None and forced.describe().startswith("bob@desk (version def456")


def test_unlock_leaves_a_lock_taken_after_the_one_that_was_shown(conn: Connection) -> None:
    acquire(conn, "prod", "alice@laptop", "abc123", COMMAND, now=T0)
    shown = holder(conn, now=T0)
    assert shown is not None
    unlock(conn, "prod", force=True, now=T0)  # someone else cleared it meanwhile...
    bobs = acquire(conn, "prod", "bob@desk", "def456", COMMAND, now=T0)  # ...and bob took it
    with pytest.raises(LockHeld, match="changed since it was shown; it is now held by bob@desk"):
        unlock(conn, "prod", force=True, seen=shown, now=T0)
    assert conn.run(f"cat {LOCK_DIR}/info.json").stdout == bobs.info


def test_locked_releases_and_records_on_success_and_on_error(conn: Connection) -> None:
    with locked(conn, "prod", "alice@laptop", "abc123", COMMAND, now=T0) as held:
        assert conn.run(f"cat {LOCK_DIR}/info.json").stdout == held.info
    with pytest.raises(RuntimeError, match="health check failed"):
        with locked(conn, "prod", "alice@laptop", "def456", COMMAND, now=T0):
            raise RuntimeError("health check failed")
    assert conn.run(f"test -e {LOCK_DIR}", check=False).code == 1
    assert conn.run(f"stat -c '%a %U %G' {AUDIT_LOG}").stdout.split() == ["640", "root", "root"]
    events = audit.read(conn, last=10)
    assert [(e["event"], e["version"], e.get("outcome")) for e in events] == [
        ("lock", "abc123", None),
        ("unlock", "abc123", "ok"),
        ("lock", "def456", None),
        ("unlock", "def456", "failed (RuntimeError)"),
    ]
    assert all(e["at"] == "2024-05-01T10:00:00Z" and e["stack"] == "prod" for e in events)
    assert events[0]["lock_id"] == events[1]["lock_id"] != events[2]["lock_id"]


def test_locked_refused_is_recorded_and_a_stolen_lock_is_not_freed(conn: Connection) -> None:
    acquire(conn, "prod", "bob@desk", "def456", COMMAND, now=T0)
    with pytest.raises(LockHeld):
        with locked(conn, "prod", "alice@laptop", "abc123", COMMAND, now=T0):
            pass
    assert audit.read(conn)[-1] == {
        "at": "2024-05-01T10:00:00Z",
        "event": "lock-refused",
        "stack": "prod",
        "owner": "alice@laptop",
        "version": "abc123",
        "held_by": "bob@desk",
    }
    unlock(conn, "prod", force=True)
    with pytest.raises(LockError, match="is held by carol@c"):
        with locked(conn, "prod", "alice@laptop", "abc123", COMMAND, now=T0):
            unlock(conn, "prod", force=True)  # alice's deploy loses its lock mid-way...
            acquire(conn, "prod", "carol@c", "fed789", COMMAND, now=T0)  # ...carol takes it
    assert '"owner": "carol@c"' in conn.run(f"cat {LOCK_DIR}/info.json").stdout
    assert audit.read(conn, last=1)[0]["released"] is False


def test_a_secret_never_reaches_the_audit_log(conn: Connection) -> None:
    secret = "hunter2-" + "q" * 16
    audit.record(conn, {"event": "deploy", "host": "app-1"}, secrets=[secret])
    refused: list[tuple[dict[str, Any], str]] = [
        ({"event": "deploy", "command": f"adpulse --password {secret}"}, "contains one of"),
        ({"event": "deploy", "env": {"REDIS_AUTH_TOKEN": "x"}}, "names a secret (token"),
        ({"event": "deploy", "Password": "x"}, "names a secret (password"),
        ({"event": "deploy", "hosts": ["app-1", secret]}, "hosts[1] contains one of"),
    ]
    for event, reason in refused:
        with pytest.raises(AuditError, match=r"^audit event refused: ") as err:
            audit.record(conn, event, secrets=[secret])
        assert reason in str(err.value).replace("'", "") and secret not in str(err.value)
    with pytest.raises(AuditError, match="the encoded line contains one of"):
        audit.line({"pid": 40123}, secrets=["40123"])
    with pytest.raises(AuditError, match="'command' contains one of"):
        with locked(conn, "prod", "a@b", "v1", f"deploy {secret}", secrets=[secret]):
            pass
    assert conn.run(f"test -e {LOCK_DIR}", check=False).code == 1  # refused before taking it
    log = conn.run(f"cat {AUDIT_LOG}").stdout
    assert log.count("\n") == 1 and secret not in log and "hunter2" not in log


def test_read_returns_the_last_lines_and_shows_a_broken_one(conn: Connection) -> None:
    assert audit.read(conn) == []
    for n in range(5):
        audit.record(conn, {"event": "step", "n": n}, now=T0)
    conn.run(f"printf '%s\\n' '{{\"cut short' >> {AUDIT_LOG}")
    assert [e.get("n") for e in audit.read(conn, last=3)] == [3, 4, None]
    assert audit.read(conn, last=1) == [{"unreadable": '{"cut short'}]


def test_ages_read_like_a_person_would_say_them() -> None:
    assert [
        lock.ago(timedelta(seconds=s)) for s in (-3, 42, 12 * 60, 3 * 3600 + 300, 50 * 3600)
    ] == ["0 s ago", "42 s ago", "12 min ago", "3 h 5 min ago", "2 days ago"]
    held = Holder(T0, timedelta(hours=2), "missing", None)
    assert held.stale and held.describe().startswith("an unknown deployer since 2024-05-01 10:00")


# --- out of the services' reach, and atomic removal -----------------------------------------


def test_the_lock_is_out_of_reach_of_the_service_user(conn: Connection) -> None:
    # the services' state directory, theirs as the layout says (here `nobody` plays them)
    conn.run("install -d -m 750 -o nobody -g nogroup /var/lib/adpulse")
    try:
        taken = acquire(conn, "prod", "alice@laptop", "abc123", COMMAND, now=T0)
        for attempt in (f"cat {LOCK_DIR}/info.json", f"mv {LOCK_DIR} /tmp/x", f"rm -rf {LOCK_DIR}"):
            as_service = f"runuser -u nobody -- sh -c {shlex.quote(attempt)}"
            assert conn.run(as_service, check=False).code != 0, attempt
        assert conn.run(f"cat {LOCK_DIR}/info.json").stdout == taken.info
        parent = conn.run(f"stat -c '%a %U %G' {LOCK_PARENT}").stdout.split()
    finally:
        conn.run("rm -rf /var/lib/adpulse")
    assert parent == ["700", "root", "root"]


RACE_DIR = "/run/adpulse-race"
# Stands in for sha256sum on the host: the real one, then on its Nth call the race's step N,
# if there is one (its output kept out of the digest).
HOOK = f"""#!/bin/sh
n=$(($(cat {RACE_DIR}/calls 2>/dev/null || echo 0) + 1)); echo "$n" > {RACE_DIR}/calls
/usr/bin/sha256sum "$@"; code=$?
if [ -x {RACE_DIR}/step$n ]; then {RACE_DIR}/step$n >/dev/null 2>&1; fi
exit $code
"""


@pytest.fixture
def race_step(conn: Connection) -> Iterator[Callable[[int, str], None]]:
    """`race_step(n, script)`: run `script` on the host right after the lock code's nth
    `sha256sum`, i.e. in the gap between its look at info.json and its next step: what another
    deployer could do there once in a while, made to happen every time."""
    conn.run(f"mkdir -p {RACE_DIR}")
    conn.put("/usr/local/sbin/sha256sum", HOOK.encode(), mode=0o755)
    assert conn.run("command -v sha256sum").stdout.strip() == "/usr/local/sbin/sha256sum"

    def step(n: int, script: str) -> None:
        conn.put(f"{RACE_DIR}/step{n}", f"#!/bin/sh\nset -e\n{script}\n".encode(), mode=0o755)

    yield step
    conn.run(f"rm -rf {RACE_DIR} /usr/local/sbin/sha256sum")


def take_as(conn: Connection, owner: str, version: str) -> tuple[str, str]:
    """(info.json of a lock `owner` holds, a shell command that makes it the lock), for a step."""
    info = {"owner": owner, "version": version, "started_at": "2024-05-01T10:00:00Z"}
    text = json.dumps({**info, "pid": 7, "command": COMMAND, "lock_id": owner}) + "\n"
    conn.put(f"{RACE_DIR}/{owner}.json", text.encode())
    return text, f"mkdir {LOCK_DIR}; cp {RACE_DIR}/{owner}.json {LOCK_DIR}/info.json"


def test_a_lock_replaced_while_being_released_is_left_to_its_new_holder(
    conn: Connection, race_step: Callable[[int, str], None]
) -> None:
    alices = acquire(conn, "prod", "alice@laptop", "abc123", COMMAND, now=T0)
    carols, carol_takes = take_as(conn, "carol@c", "fed789")
    # just after release() saw alice's info.json: the lock is cleared and carol takes it
    race_step(1, f"rm -rf {LOCK_DIR}; {carol_takes}")
    with pytest.raises(LockError, match=r"lock on \S+ is held by carol@c \(version fed789"):
        release(conn, alices)
    assert conn.run(f"cat {LOCK_DIR}/info.json").stdout == carols
    assert conn.run(f"ls -A {LOCK_PARENT}").stdout.split() == ["deploy.lock"]


def test_a_lock_replaced_and_taken_again_while_being_released_is_kept_aside(
    conn: Connection, race_step: Callable[[int, str], None]
) -> None:
    alices = acquire(conn, "prod", "alice@laptop", "abc123", COMMAND, now=T0)
    carols, carol_takes = take_as(conn, "carol@c", "fed789")
    daves, dave_takes = take_as(conn, "dave@d", "0a1b2c")
    race_step(1, f"rm -rf {LOCK_DIR}; {carol_takes}")  # as above...
    race_step(2, dave_takes)  # ...and dave takes the name while carol's lock is moved away
    with pytest.raises(LockError) as err:
        release(conn, alices)
    aside = conn.run(f"ls -d {LOCK_PARENT}/.deploy.lock.removing.*").stdout.strip()
    assert str(err.value) == (
        f"stack prod: the deploy lock on {conn.target.name} was replaced while it was being "
        "removed, and a new lock was taken before it could be put back; the replaced one is kept "
        f"in {aside} on {conn.target.name}: nothing else changed; check who deploys (audit log: "
        f"{conn.target.name}:{AUDIT_LOG}) before going on"
    )
    assert conn.run(f"cat {LOCK_DIR}/info.json").stdout == daves
    assert conn.run(f"cat {aside}/info.json").stdout == carols
