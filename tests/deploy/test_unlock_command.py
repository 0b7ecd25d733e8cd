"""`adpulse deploy unlock` end to end: the outputs file in, the lock on the first app host (a
real Debian host) shown, kept or cleared, and the clearing in that host's audit log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import audit
from deploy.audit import default_owner
from deploy.lock import acquire
from deploy.ssh import Connection, Target, connect
from tests.deploy.test_commands import outputs_on, run
from tests.support.hosts import Host

LOCK_DIR = "/var/lib/adpulse-deploy/deploy.lock"
AUDIT_LOG = "/var/log/adpulse/audit.log"


@pytest.fixture
def app1(test_hosts: list[Host], tmp_path: Path) -> Iterator[tuple[Connection, list[str]]]:
    """A session to app-1 (the first test host, which keeps the lock; no lock, no audit log),
    and the command line that reaches it with the stack's known_hosts and key."""
    host = test_hosts[0]
    clean = f"rm -rf {LOCK_DIR} {AUDIT_LOG}"
    assert host.ssh(clean).returncode == 0
    known = tmp_path / "state" / "known_hosts" / "prod"
    known.parent.mkdir(parents=True)
    known.write_text("".join(h.known_hosts_line + "\n" for h in test_hosts))
    outputs = outputs_on(test_hosts, tmp_path)
    args = ["deploy", "unlock", "--stack", "prod", "--outputs", str(outputs)]
    args += ["--ssh-user", "root", "--ssh-key", str(host.ssh_key_path)]
    args += ["--state-dir", str(tmp_path / "state")]
    with connect(Target("app-1", host.ip, user="root"), "prod", known, host.ssh_key_path) as c:
        yield c, args
    assert host.ssh(clean).returncode == 0


def test_an_unlocked_stack_says_so_and_where_the_lock_would_be(
    app1: tuple[Connection, list[str]],
) -> None:
    _, args = app1
    code, out, err = run(*args)
    assert (code, out, err) == (0, "stack prod is not locked (its lock is kept on app-1)\n", "")


def test_a_fresh_lock_is_shown_and_kept_unless_confirmed(
    app1: tuple[Connection, list[str]],
) -> None:
    conn, args = app1
    lock = acquire(conn, "prod", "alice@laptop", "abc123", "adpulse deploy --stack prod")
    code, out, _ = run(*args, stdin="n\n")
    assert code == 1
    assert re.match(
        r"stack prod is locked on app-1 by alice@laptop \(version abc123, started \d+ s ago, "
        r"`adpulse deploy --stack prod`\)\n"
        r"Clear it\? Only if that deploy is no longer running \[y/N\]: n\nlock kept\n$",
        out,
    ), out
    assert conn.run(f"cat {LOCK_DIR}/info.json").stdout == lock.info
    assert audit.read(conn) == []


def test_yes_clears_the_lock_and_records_who_cleared_whose(
    app1: tuple[Connection, list[str]],
) -> None:
    conn, args = app1
    acquire(conn, "prod", "alice@laptop", "abc123", "adpulse deploy --stack prod")
    code, out, _ = run(*args, "--yes")
    assert code == 0, out
    assert out.splitlines()[0].startswith("stack prod is locked on app-1 by alice@laptop")
    assert out.splitlines()[1] == "cleared the deploy lock of stack prod"
    assert conn.run(f"test -e {LOCK_DIR}", check=False).code == 1
    [event] = audit.read(conn)
    assert event["event"] == "lock-cleared" and event["by"] == default_owner()
    assert (event["held_by"], event["version"]) == ("alice@laptop", "abc123")
    code, out, _ = run(*args, "--yes")
    assert (code, out) == (0, "stack prod is not locked (its lock is kept on app-1)\n")


def test_a_lock_without_info_can_be_cleared_and_says_it_is_unknown(
    app1: tuple[Connection, list[str]],
) -> None:
    conn, args = app1
    conn.run(f"mkdir -p {LOCK_DIR} && touch -d '2024-05-01 10:00Z' {LOCK_DIR}")
    code, out, _ = run(*args, stdin="y\n")
    assert code == 0, out
    assert out.startswith(
        "stack prod is locked on app-1 by an unknown deployer since 2024-05-01 10:00 UTC ("
    )
    assert "\nClear it? [y/N]: y\ncleared the deploy lock of stack prod\n" in out
    assert audit.read(conn)[0]["held_by"] is None


def test_a_host_not_in_known_hosts_is_one_line_naming_the_trust_step(
    app1: tuple[Connection, list[str]], tmp_path: Path
) -> None:
    _, args = app1
    (tmp_path / "state" / "known_hosts" / "prod").write_text("")
    code, out, err = run(*args, "--yes")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("error: app-1 (") and "adpulse deploy trust --stack prod" in err
