"""deploy.prepare on a real Debian host: the service user and the layout's directories made
once with their modes and owners, nothing changed the second time, drift repaired, a dry run
that touches nothing, and a disk too small for a release refused before anything is sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import layout
from deploy.prepare import DiskFull, PrepareError, check_disk, prepare
from deploy.ssh import Connection, Target, connect
from tests.support.hosts import Host

EVERYTHING = " ".join(str(d.path) for d in layout.DIRECTORIES)
FRESH = f"rm -rf {EVERYTHING}; userdel adpulse 2>/dev/null; groupdel adpulse 2>/dev/null; true"


@pytest.fixture
def conn(test_hosts: list[Host], tmp_path: Path) -> Iterator[Connection]:
    """The first test host as if never deployed to (no adpulse user, none of the layout's
    directories), and the same again after the test."""
    host = test_hosts[0]
    known = tmp_path / "known_hosts"
    known.write_text(host.known_hosts_line + "\n")
    with connect(Target(host.name, host.ip, user="root"), "prod", known, host.ssh_key_path) as c:
        c.run(FRESH)
        try:
            yield c
        finally:
            c.run(FRESH)


def layout_on(conn: Connection) -> list[str]:
    """`<path> <mode> <user>:<group>` of each layout directory, as the host has it."""
    return conn.run(f"stat -c '%n %a %U:%G' {EVERYTHING}").stdout.splitlines()


EXPECTED = [f"{d.path} {d.mode:o} {d.owner}" for d in layout.DIRECTORIES]


def test_a_fresh_host_gets_the_user_and_every_directory_then_nothing_changes(
    conn: Connection,
) -> None:
    changed = prepare(conn)
    assert changed == [
        "create group adpulse (system)",
        "create user adpulse (system, group adpulse, no login shell, no home)",
        *(f"create {line}" for line in EXPECTED),
    ]
    assert layout_on(conn) == EXPECTED
    assert "/var/lib/adpulse-deploy 700 root:root" in EXPECTED  # the lock's, root's alone
    user = conn.run("getent passwd adpulse").stdout.strip().split(":")
    uid, shell, home = int(user[2]), user[6], user[5]
    assert (shell, home) == ("/usr/sbin/nologin", "/nonexistent") and uid < 1000  # a system user
    assert conn.run(f"test -e {home}", check=False).code == 1
    assert conn.run("id -gn adpulse").stdout.strip() == "adpulse"
    assert prepare(conn) == []  # idempotent: a ready host gives no lines
    assert layout_on(conn) == EXPECTED


def test_a_drifted_mode_or_owner_is_repaired_and_said(conn: Connection) -> None:
    prepare(conn)
    conn.run(
        "chmod 0777 /var/lib/adpulse-deploy && chown root:root /var/lib/adpulse "
        "&& chmod 0700 /opt/adpulse && usermod --shell /bin/bash adpulse"
    )
    planned = prepare(conn, dry_run=True)
    assert planned == [
        "set the login shell of adpulse: /bin/bash -> /usr/sbin/nologin",
        "chmod /opt/adpulse 700 -> 755",
        "chown /var/lib/adpulse root:root -> adpulse:adpulse",
        "chmod /var/lib/adpulse-deploy 777 -> 700",
    ]
    assert "/opt/adpulse 700 root:root" in layout_on(conn)  # a dry run touches nothing
    assert prepare(conn) == planned
    assert layout_on(conn) == EXPECTED
    assert conn.run("getent passwd adpulse").stdout.strip().endswith(":/usr/sbin/nologin")


def test_a_dry_run_on_a_fresh_host_lists_everything_and_makes_nothing(conn: Connection) -> None:
    assert len(prepare(conn, dry_run=True)) == 2 + len(layout.DIRECTORIES)
    assert conn.run("getent passwd adpulse", check=False).code == 2
    assert conn.run(f"ls -d {EVERYTHING}", check=False).stdout == ""


def test_a_file_where_a_directory_belongs_is_refused_not_replaced(conn: Connection) -> None:
    conn.run("mkdir -p /var/lib && echo mine > /var/lib/adpulse-deploy")
    with pytest.raises(PrepareError) as err:
        prepare(conn)
    assert str(err.value) == (
        f"{conn.target.name}: cannot prepare the host for adpulse: /var/lib/adpulse-deploy "
        "exists but is not a directory: move it away, then run again"
    )
    assert conn.run("cat /var/lib/adpulse-deploy").stdout == "mine\n"


def test_check_disk_refuses_a_release_bigger_than_the_free_space(conn: Connection) -> None:
    prepare(conn)
    releases = str(layout.RELEASES)
    conn.run(f"mount -t tmpfs -o size=5m tmpfs {releases}")
    try:
        need = 50 * 2**20
        with pytest.raises(DiskFull) as err:
            check_disk(conn, releases, need)
        free = err.value.free
        assert 0 < free <= 5 * 2**20 and err.value.need == need
        assert str(err.value) == (
            f"{conn.target.name}: {releases} has 5.0 MiB free ({free} bytes, on {releases}), "
            f"the release needs 50.0 MiB ({need} bytes): nothing was uploaded; free space on "
            f"{releases} (old releases under {releases} that are neither current nor the one "
            "before go first), then deploy again"
        )
        # a path not made yet is measured where it would be made; a small need passes
        assert check_disk(conn, f"{releases}/0123456789ab/venv", 2**20) == free
    finally:
        conn.run(f"umount {releases}")
    assert check_disk(conn, releases, need) > need  # the host's own disk has room
