"""deploy.ssh against real Debian hosts (systemd-nspawn, own IPs): strict host keys, trust,
clear errors for every way a login fails, secrets only on the channel, atomic writes."""

from __future__ import annotations

import base64
import socket
import threading
import time
from pathlib import Path

import paramiko
import pytest

from deploy.ssh import RemoteError, SshError, Target, connect, fingerprint, trust
from tests.support.hosts import Host


def target(host: Host) -> Target:
    return Target(host.name, host.ip, user="root")


def known(tmp_path: Path, *hosts: Host) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text("".join(h.known_hosts_line + "\n" for h in hosts))
    return path


def test_a_host_missing_from_known_hosts_is_refused_with_the_trust_command(
    test_hosts: list[Host], tmp_path: Path
) -> None:
    host = test_hosts[0]
    with pytest.raises(SshError) as err:
        with connect(target(host), "prod", tmp_path / "empty", host.ssh_key_path):
            pass
    assert "is not in the stack's known_hosts" in str(err.value)
    assert "adpulse deploy trust --stack prod" in str(err.value)


def test_trust_records_the_keys_the_hosts_offer_and_then_connect_works(
    test_hosts: list[Host], tmp_path: Path
) -> None:
    path = tmp_path / "state" / "known_hosts"
    shown = trust([target(h) for h in test_hosts], path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    for host in test_hosts:
        kind, data = host.host_public_key.split()[:2]
        offered = paramiko.PKey.from_type_string(kind, base64.b64decode(data))
        assert (host.name, fingerprint(offered)) in {(t.name, fp) for t, _, fp in shown}
        with connect(target(host), "prod", path, host.ssh_key_path) as conn:
            assert conn.run("hostname").stdout.strip() == host.name


def test_a_changed_host_key_is_refused_with_both_fingerprints(
    test_hosts: list[Host], tmp_path: Path
) -> None:
    first, second = test_hosts[0], test_hosts[1]
    # known_hosts says `first` has `second`'s key: what a replaced or spoofed host looks like
    path = tmp_path / "known_hosts"
    path.write_text(f"{first.ip} {second.host_public_key}\n")
    with pytest.raises(SshError) as err:
        with connect(target(first), "prod", path, first.ssh_key_path):
            pass
    text = str(err.value)
    assert "offered host key SHA256:" in text and "has SHA256:" in text
    assert f"adpulse deploy trust --stack prod --host {first.name}" in text


def test_a_wrong_ssh_key_is_refused_naming_the_key_and_user(
    test_hosts: list[Host], tmp_path: Path
) -> None:
    host = test_hosts[0]
    stranger = tmp_path / "stranger"
    key = paramiko.ECDSAKey.generate()
    key.write_private_key_file(str(stranger))
    with pytest.raises(SshError) as err:
        with connect(target(host), "prod", known(tmp_path, host), stranger):
            pass
    assert f"refused the key {stranger} for user root" in str(err.value)


def test_an_unreachable_host_is_one_clear_error(test_hosts: list[Host], tmp_path: Path) -> None:
    with socket.socket() as s:  # a port on this machine that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(
        SshError, match=r"cannot reach gone at 127\.0\.0\.1:\d+ \(Connection refused"
    ):
        with connect(Target("gone", "127.0.0.1", port, "root"), "prod", tmp_path / "k"):
            pass


def test_a_secret_on_stdin_never_shows_in_ps(test_hosts: list[Host], tmp_path: Path) -> None:
    host = test_hosts[0]
    secret = "s3cr3t-" + "x" * 24
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(host.ssh("ps -eo args").stdout)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    with connect(target(host), "prod", known(tmp_path, host), host.ssh_key_path) as conn:
        watcher.start()
        try:
            got = conn.run("sleep 1; sha256sum", stdin=secret.encode()).stdout
        finally:
            stop.set()
            watcher.join()
    import hashlib

    assert got.split()[0] == hashlib.sha256(secret.encode()).hexdigest()
    assert len(seen) > 3 and not any(secret in snapshot for snapshot in seen)


def test_put_writes_atomically_with_its_mode_and_owner(
    test_hosts: list[Host], tmp_path: Path
) -> None:
    host = test_hosts[1]
    with connect(target(host), "prod", known(tmp_path, host), host.ssh_key_path) as conn:
        conn.put("/etc/adpulse-test/api.env", b"KEY=value\n", mode=0o600, owner="root:root")
        assert conn.run("stat -c '%a %U %G' /etc/adpulse-test/api.env").stdout.split() == [
            "600",
            "root",
            "root",
        ]
        assert conn.run("cat /etc/adpulse-test/api.env").stdout == "KEY=value\n"
        # no temporary file is left beside it, and a failed write leaves the old file intact
        with pytest.raises(RemoteError):
            conn.put("/etc/adpulse-test/api.env", b"new\n", owner="nobody-such:root")
        assert conn.run("cat /etc/adpulse-test/api.env").stdout == "KEY=value\n"
        assert conn.run("ls /etc/adpulse-test").stdout.split() == ["api.env"]


def test_a_failed_command_names_the_host_command_and_output(
    test_hosts: list[Host], tmp_path: Path
) -> None:
    host = test_hosts[2]
    with connect(target(host), "prod", known(tmp_path, host), host.ssh_key_path) as conn:
        with pytest.raises(RemoteError) as err:
            conn.run("echo broken >&2; exit 7")
    assert err.value.code == 7
    assert str(err.value) == f"{host.name}: `echo broken >&2; exit 7` exited 7: broken"


def test_through_a_jump_host(test_hosts: list[Host], tmp_path: Path) -> None:
    bastion, inner = test_hosts[0], test_hosts[2]
    path = known(tmp_path, bastion, inner)
    with connect(target(inner), "prod", path, inner.ssh_key_path, jump=target(bastion)) as conn:
        assert conn.run("hostname").stdout.strip() == inner.name
        # the inner host saw the connection come from the bastion's address
        who = conn.run("echo $SSH_CLIENT").stdout.split()[0]
    assert who == bastion.ip


def test_every_byte_of_output_arrives_however_fast_the_command_exits(
    test_hosts: list[Host], tmp_path: Path
) -> None:
    """The exit status may come before the last output; run() must wait for both."""
    host = test_hosts[1]
    body = "x" * 299 + "\n"
    with connect(target(host), "prod", known(tmp_path, host), host.ssh_key_path) as conn:
        conn.put("/tmp/adpulse-300-bytes", body.encode())
        outputs = [conn.run("cat /tmp/adpulse-300-bytes").stdout for _ in range(300)]
        errors = [conn.run("cat /tmp/adpulse-300-bytes >&2").stderr for _ in range(100)]
    assert outputs == [body] * 300
    assert errors == [body] * 100
