"""deploy.ssh against real Debian hosts (systemd-nspawn, own IPs): strict host keys, trust,
clear errors for every way a login fails, secrets only on the channel, deadlines that hold,
atomic uploads over SFTP, a jump host and a proxy command."""

from __future__ import annotations

import base64
import hashlib
import os
import shlex
import socket
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from typer.testing import CliRunner

from cli import app
from deploy.ssh import (
    Access,
    CommandTimeout,
    RemoteError,
    SshError,
    Target,
    connect,
    fingerprint,
    open_host,
    proxy_command_line,
    scan,
    trust,
)
from tests.deploy.test_commands import outputs_on
from tests.support.hosts import Host, boot_hosts, skip_unless_possible, with_packages


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
    shown = trust({target(h): scan(target(h)) for h in test_hosts}, path)
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
        assert conn.run("ls -A /etc/adpulse-test").stdout.split() == ["api.env"]
        conn.run("rm -rf /etc/adpulse-test")


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


# --- deadlines ------------------------------------------------------------------------------


def gone(conn_or_host: Host, pattern: str) -> bool:
    """Whether no process matching `pattern` (a pgrep regex) is left on the host, waiting up to
    30 s for the host's own `timeout` to stop it."""
    deadline = time.monotonic() + 30
    while conn_or_host.ssh(f"pgrep -f '{pattern}'").returncode == 0:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_a_command_past_its_timeout_raises_naming_host_command_and_timeout(
    test_hosts: list[Host], tmp_path: Path
) -> None:
    host = test_hosts[0]
    secret = "stdin-secret-" + "z" * 16
    command = ": adpulse-timeout-test; echo started; sleep 30"
    with connect(target(host), "prod", known(tmp_path, host), host.ssh_key_path) as conn:
        with pytest.raises(CommandTimeout) as err:
            conn.run(command, stdin=secret.encode(), timeout=1)
        assert conn.run("echo still usable").stdout == "still usable\n"
    text = str(err.value)
    assert text.startswith(f"{host.name}: `{command}` still ran after its timeout of 1 s: ")
    assert text.endswith(": started") and "\n" not in text and secret not in text
    assert err.value.code == 124 and err.value.stdout == "started\n"
    # the host stops it too, rather than leaving it running with nobody waiting
    assert gone(host, "adpulse-timeout-[t]est")


# --- trust ----------------------------------------------------------------------------------


def new_host_key() -> tuple[bytes, paramiko.PKey]:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
    public = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    kind, blob = public.split()[:2]
    return private, paramiko.PKey.from_type_string(kind, base64.b64decode(blob))


def test_trust_records_the_keys_it_showed_not_a_second_scan(
    test_hosts: list[Host], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host's key changes between the fingerprints shown and the `y` typed: what gets
    recorded is what the person compared (a second scan would record the new key unseen)."""
    host = test_hosts[2]  # ch-1 in the outputs
    kind, blob = host.host_public_key.split()[:2]
    shown = paramiko.PKey.from_type_string(kind, base64.b64decode(blob))
    private, swapped = new_host_key()
    key_file = "/etc/ssh/ssh_host_ed25519_key"
    args = [
        "deploy",
        "trust",
        "--stack",
        "prod",
        "--outputs",
        str(outputs_on(test_hosts, tmp_path)),
    ]
    args += ["--host", "ch-1", "--ssh-user", "root", "--state-dir", str(tmp_path / "state")]
    with connect(target(host), "prod", known(tmp_path, host), host.ssh_key_path) as conn:
        conn.run(f"cp -p {key_file} {key_file}.orig")
        ask = typer.confirm

        def swap_then_ask(text: str) -> bool:  # the host changes its key while we read
            conn.put(key_file, private, mode=0o600)
            return ask(text)

        monkeypatch.setattr(typer, "confirm", swap_then_ask)
        try:
            result = CliRunner().invoke(app, args, input="y\n")
            offered_after = scan(target(host))  # sshd reads its key per connection
        finally:
            conn.run(f"mv -f {key_file}.orig {key_file}")
    assert [fingerprint(k) for _, k in offered_after] == [fingerprint(swapped)]
    assert result.exit_code == 0, result.output
    assert f"ch-1 {host.ip} ssh-ed25519 {fingerprint(shown)}\n" in result.stdout
    assert fingerprint(swapped) not in result.stdout
    recorded = paramiko.HostKeys(str(tmp_path / "state" / "known_hosts" / "prod"))
    assert [fingerprint(k) for k in recorded[host.ip].values()] == [fingerprint(shown)]


def test_scan_through_a_jump_host_reads_the_inner_hosts_key(
    test_hosts: list[Host], tmp_path: Path
) -> None:
    bastion, inner = test_hosts[0], test_hosts[1]
    state = tmp_path / "state"
    (state / "known_hosts").mkdir(parents=True)
    (state / "known_hosts" / "prod").write_text(bastion.known_hosts_line + "\n")
    access = Access("root", bastion.ssh_key_path, target(bastion), None, state)
    kind, blob = inner.host_public_key.split()[:2]
    expected = paramiko.PKey.from_type_string(kind, base64.b64decode(blob))
    found = scan(target(inner), access, "prod")
    assert [(k, fingerprint(key)) for k, key in found] == [("ssh-ed25519", fingerprint(expected))]


# --- uploads --------------------------------------------------------------------------------


def test_put_makes_missing_parents_that_the_service_user_can_traverse(
    test_hosts: list[Host], tmp_path: Path
) -> None:
    host = test_hosts[1]
    top = "/opt/adpulse-put-test"
    with connect(target(host), "prod", known(tmp_path, host), host.ssh_key_path) as conn:
        conn.run(f"rm -rf {top}")
        try:
            conn.put(f"{top}/a/b/common.env", b"X=1\n", mode=0o644)
            stats = conn.run(f"stat -c '%a %U %G' {top} {top}/a {top}/a/b").stdout.split()
            assert stats == ["755", "root", "root"] * 3
            assert conn.run(f"runuser -u nobody -- cat {top}/a/b/common.env").stdout == "X=1\n"
        finally:
            conn.run(f"rm -rf {top}")


def test_put_file_streams_a_big_file_without_holding_it_in_memory(
    test_hosts: list[Host], tmp_path: Path
) -> None:
    host = test_hosts[1]
    local, digest = tmp_path / "release.tar.gz", hashlib.sha256()
    with open(local, "wb") as out:
        for _ in range(100):  # 100 MiB, a release's size
            chunk = os.urandom(2**20)
            out.write(chunk)
            digest.update(chunk)
    remote = "/opt/adpulse-put-test/releases/.incoming/release.tar.gz"
    with connect(target(host), "prod", known(tmp_path, host), host.ssh_key_path) as conn:
        tracemalloc.start()
        try:
            conn.put_file(remote, local, mode=0o600)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            on_host = conn.run(f"sha256sum < {remote}; stat -c '%a %U %G' {remote}").stdout
            conn.run("rm -rf /opt/adpulse-put-test")
    assert on_host.split() == [digest.hexdigest(), "-", "600", "root", "root"]
    assert peak < 16 * 2**20, f"peak {peak} bytes of Python memory for a 100 MiB upload"


def test_an_upload_to_a_full_disk_is_one_clear_error_and_keeps_the_old_file(
    test_hosts: list[Host], tmp_path: Path
) -> None:
    host = test_hosts[1]
    where = "/mnt/adpulse-full"
    with connect(target(host), "prod", known(tmp_path, host), host.ssh_key_path) as conn:
        conn.run(f"mkdir -p {where} && mount -t tmpfs -o size=1m tmpfs {where}")
        try:
            conn.put(f"{where}/api.env", b"OLD\n")
            with pytest.raises(SshError) as err:
                conn.put(f"{where}/api.env", os.urandom(2 * 2**20))
            assert conn.run(f"cat {where}/api.env").stdout == "OLD\n"
            assert conn.run(f"ls -A {where}").stdout.split() == ["api.env"]
            conn.put(f"{where}/api.env", b"NEW\n")  # the connection is fine after it
            assert conn.run(f"cat {where}/api.env").stdout == "NEW\n"
        finally:
            conn.run(f"umount {where} && rmdir {where}")
    text = str(err.value)
    assert text.startswith(f"upload of {where}/api.env (2097152 bytes) to {host.name} failed (")
    assert "its disk is full (" in text and "2097152 needed): free space there" in text


# --- jump host and proxy command ------------------------------------------------------------

# A ProxyCommand as OpenSSH runs one: stdin and stdout carried to HOST:PORT; it notes each use.
RELAY = """
import os, socket, sys, threading
host, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(log, "a") as f:
    f.write(f"{host} {port}\\n")
s = socket.create_connection((host, port))
def up():
    while data := os.read(0, 65536):
        s.sendall(data)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while data := s.recv(65536):
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]
"""


def state_with(tmp_path: Path, *hosts: Host) -> Path:
    state = tmp_path / "state"
    (state / "known_hosts").mkdir(parents=True, exist_ok=True)
    (state / "known_hosts" / "prod").write_text("".join(h.known_hosts_line + "\n" for h in hosts))
    return state


def relay_command(tmp_path: Path) -> tuple[str, Path]:
    script, log = tmp_path / "relay.py", tmp_path / "relay.log"
    script.write_text(RELAY)
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} %h %p {log}", log


def test_open_host_through_a_jump_host(test_hosts: list[Host], tmp_path: Path) -> None:
    bastion, inner = test_hosts[0], test_hosts[1]
    state = state_with(tmp_path, bastion, inner)
    access = Access("root", inner.ssh_key_path, target(bastion), None, state)
    with open_host(Target("app-2", inner.ip), "prod", access) as conn:
        assert conn.run("hostname").stdout.strip() == inner.name
        assert conn.run("echo $SSH_CLIENT").stdout.split()[0] == bastion.ip


def test_open_host_through_a_proxy_command(test_hosts: list[Host], tmp_path: Path) -> None:
    host = test_hosts[1]
    command, log = relay_command(tmp_path)
    access = Access("root", host.ssh_key_path, None, command, state_with(tmp_path, host))
    with open_host(Target("app-2", host.ip), "prod", access) as conn:
        assert conn.run("hostname").stdout.strip() == host.name
        conn.put("/tmp/adpulse-proxied", b"through the proxy\n")
        assert conn.run("cat /tmp/adpulse-proxied").stdout == "through the proxy\n"
    assert log.read_text() == f"{host.ip} 22\n"


def test_a_proxy_command_carries_the_jump_host_when_both_are_given(
    test_hosts: list[Host], tmp_path: Path
) -> None:
    bastion, inner = test_hosts[0], test_hosts[2]
    command, log = relay_command(tmp_path)
    state = state_with(tmp_path, bastion, inner)
    access = Access("root", inner.ssh_key_path, target(bastion), command, state)
    with open_host(Target("ch-1", inner.ip), "prod", access) as conn:
        assert conn.run("echo $SSH_CLIENT").stdout.split()[0] == bastion.ip
    assert log.read_text() == f"{bastion.ip} 22\n"


def test_a_failing_proxy_command_is_one_line_with_what_it_said(
    test_hosts: list[Host], tmp_path: Path
) -> None:
    host = test_hosts[1]
    failing = "sh -c 'echo \"An error occurred (TargetNotConnected): %i is not up\" >&2; exit 254'"
    access = Access("root", host.ssh_key_path, None, failing, state_with(tmp_path, host))
    with pytest.raises(SshError) as err:
        with open_host(Target("app-2", host.ip, instance_id="i-0abc"), "prod", access):
            pass
    text = str(err.value)
    assert text.startswith("cannot reach app-2 through the proxy command `sh -c 'echo \"An error")
    assert "it exited 254 saying: An error occurred (TargetNotConnected): i-0abc is not up;" in text
    assert "\n" not in text
    missing = Access("root", host.ssh_key_path, None, "/nonexistent/aws ssm start-session")
    with pytest.raises(SshError, match=r"cannot start: No such file or directory"):
        with open_host(Target("app-2", host.ip), "prod", missing):
            pass


def test_proxy_command_tokens_become_one_word_each() -> None:
    app = Target("app-1", "10.0.1.5", 2222, "admin", instance_id="i-0abc")
    ssm = (
        "aws ssm start-session --target %i --document-name AWS-StartSSHSession "
        "--parameters portNumber=%p"
    )
    assert proxy_command_line(ssm, app) == ssm.replace("%i", "i-0abc").replace("%p", "2222")
    assert proxy_command_line("nc %h %p", Target("x", "a b;rm -rf /")) == "nc 'a b;rm -rf /' 22"
    assert proxy_command_line("echo 100%% %r@%n", app) == "echo 100% admin@app-1"
    with pytest.raises(SshError, match="uses %i, but app-1 has no known instance id"):
        proxy_command_line("aws ssm start-session --target %i", Target("app-1", "10.0.1.5"))
    with pytest.raises(SshError, match="unknown token %z"):
        proxy_command_line("nc %z", app)


# --- a login user other than root, as on Debian's AMI ---------------------------------------


@pytest.fixture(scope="module")
def sudo_host() -> Iterator[Host]:
    """A host with `sudo` and a login user `admin` allowed it without a password: the path
    production takes (commands through `sudo -n`, uploads written by a root sftp-server)."""
    skip_unless_possible()
    with boot_hosts(1, packages=with_packages("sudo")) as [host]:
        setup = (
            "set -e; useradd --create-home --shell /bin/bash admin; "
            "install -d -m 700 -o admin -g admin /home/admin/.ssh; "
            "install -m 600 -o admin -g admin /root/.ssh/authorized_keys /home/admin/.ssh/; "
            "echo 'admin ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/admin; "
            "chmod 440 /etc/sudoers.d/admin"
        )
        assert host.ssh(setup).returncode == 0
        yield host


@pytest.mark.timeout(900)  # the first run on a machine builds the image with sudo
def test_as_a_sudo_user_commands_run_as_root_and_uploads_land_as_asked(
    sudo_host: Host, tmp_path: Path
) -> None:
    admin = Target(sudo_host.name, sudo_host.ip, user="admin")
    local = tmp_path / "release.tar.gz"
    local.write_bytes(os.urandom(3 * 2**20 + 7))
    with connect(admin, "prod", known(tmp_path, sudo_host), sudo_host.ssh_key_path) as conn:
        assert conn.run("id -un; echo $SUDO_USER").stdout.split() == ["root", "admin"]
        # a root-only directory: the login user could not even look into it
        conn.run("install -d -m 700 /var/lib/adpulse-deploy")
        conn.put("/var/lib/adpulse-deploy/note", b"root only\n", mode=0o600)
        conn.put_file("/opt/adpulse/releases/.incoming/r.tar.gz", local, mode=0o640)
        stats = conn.run(
            "stat -c '%a %U %G' /var/lib/adpulse-deploy/note /opt/adpulse "
            "/opt/adpulse/releases/.incoming /opt/adpulse/releases/.incoming/r.tar.gz"
        ).stdout.split()
        assert " ".join(stats) == "600 root root 755 root root 755 root root 640 root root"
        sums = conn.run("sha256sum < /opt/adpulse/releases/.incoming/r.tar.gz").stdout
        assert sums.split()[0] == hashlib.sha256(local.read_bytes()).hexdigest()
        with pytest.raises(CommandTimeout):
            conn.run(": adpulse-sudo-timeout-test; sleep 30", timeout=1)
    assert gone(sudo_host, "adpulse-sudo-timeout-[t]est")
