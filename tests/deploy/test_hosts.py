"""The test hosts themselves: real systemd hosts at their own IPs, reachable by strict ssh,
isolated from each other, and gone without a trace after teardown."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import paramiko
import pytest

from tests.support import hosts as hosts_module
from tests.support.hosts import Host, HostError, boot_hosts, stop_host
from tests.support.processes import alive, descendants

# The first test of a fresh machine builds the image (about a minute) inside its setup.
pytestmark = pytest.mark.timeout(900)


def test_three_hosts_answer_ssh_each_at_its_own_ip(test_hosts: list[Host]) -> None:
    assert len(test_hosts) == 3
    assert len({host.ip for host in test_hosts}) == 3
    for host in test_hosts:
        result = host.ssh("hostname; ip -4 -o addr show dev eth0")
        assert result.returncode == 0, result.stderr
        hostname, address = result.stdout.splitlines()
        assert hostname == host.name
        assert f" {host.ip}/24 " in address


def test_ssh_refuses_a_host_key_other_than_the_recorded_one(test_hosts: list[Host]) -> None:
    first, second = test_hosts[:2]
    assert first.host_public_key != second.host_public_key
    client = first.connect()
    client.close()
    with pytest.raises(paramiko.BadHostKeyException):
        first.connect(known_key=second.host_public_key)


def test_pid_1_is_systemd_and_the_system_is_up(test_hosts: list[Host]) -> None:
    for host in test_hosts:
        assert host.ssh("ps -p 1 -o comm=").stdout.strip() == "systemd"
        state = host.ssh("systemctl is-system-running").stdout.strip()
        assert state in ("running", "degraded"), f"{host.name}: {state}"


def test_exit_code_and_both_streams_come_back(test_hosts: list[Host]) -> None:
    result = test_hosts[0].ssh("echo out; echo err >&2; head -c 300000 /dev/zero >&2; exit 3")
    assert (result.returncode, result.stdout) == (3, "out\n")
    assert result.stderr.startswith("err\n") and len(result.stderr) == 4 + 300_000


def test_a_unit_started_on_one_host_runs_there_only(test_hosts: list[Host]) -> None:
    here, *others = test_hosts
    started = here.ssh("systemd-run --unit adpulse-probe sleep 600")
    assert started.returncode == 0, started.stderr
    try:
        assert here.ssh("systemctl is-active adpulse-probe").stdout.strip() == "active"
        for other in others:
            listed = other.ssh("systemctl list-units --all --no-legend adpulse-probe.service")
            assert listed.stdout.strip() == "", f"{other.name}: {listed.stdout}"
            assert other.ssh("pgrep -x sleep").returncode == 1
    finally:
        here.ssh("systemctl stop adpulse-probe")


def test_hosts_reach_each_other(test_hosts: list[Host]) -> None:
    for host in test_hosts:
        for peer in test_hosts:
            probe = host.ssh(f"timeout 5 bash -c '</dev/tcp/{peer.ip}/22'")
            assert probe.returncode == 0, f"{host.name} -> {peer.name}: {probe.stderr}"


def _traces(host: Host) -> list[str]:
    """What of `host` is still on this machine."""
    found = []
    if Path(f"/run/netns/{host.netns}").exists():
        found.append(f"netns {host.netns}")
    if Path(f"/sys/class/net/{host.veth}").exists():
        found.append(f"veth {host.veth}")
    if (hosts_module.PROPAGATE_DIR / host.machine).exists():
        found.append(f"nspawn's {hosts_module.PROPAGATE_DIR / host.machine}")
    if host.root.exists():
        found.append(f"overlay {host.root}")
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if f"--machine={host.machine}".encode() in cmdline.read_bytes():
                found.append(f"process {cmdline.parent.name}")
        except OSError:
            continue
    return found


@pytest.mark.parametrize("stop_timeout", [None, 0.0], ids=["poweroff", "killed"])
def test_teardown_leaves_no_process_netns_veth_or_files(
    test_hosts: list[Host], stop_timeout: float | None
) -> None:
    with boot_hosts(1) as [extra]:
        assert extra.process is not None
        nspawn = extra.process.pid
        inside = descendants(nspawn)
        bridge = f"/sys/class/net/{extra.veth}/master"
        bridge_name = Path(bridge).resolve().name
        assert bridge_name.startswith("adpulse-br")
        assert extra.ssh("ps -p 1 -o comm=").stdout.strip() == "systemd"
        assert inside and all(alive(pid) for pid in inside)
        traces = _traces(extra)
        assert len(traces) == 5, traces  # netns, veth, propagate dir, overlay, nspawn
        work_dir = extra.ssh_key_path.parent
        if stop_timeout is not None:
            stop_host(extra, timeout=stop_timeout)  # past 0 s: SIGKILL to all of it
            assert _traces(extra) == []
    assert _traces(extra) == []
    assert not [pid for pid in inside | {nspawn} if alive(pid)]
    assert not Path(f"/sys/class/net/{bridge_name}").exists()
    assert not work_dir.exists()
    # The session's hosts did not notice.
    assert all(host.ssh("true").returncode == 0 for host in test_hosts)


def test_a_host_not_up_by_its_deadline_fails_clearly_and_is_removed(
    test_hosts: list[Host], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hosts_module, "BOOT_TIMEOUT", 0.0)
    with pytest.raises(
        HostError, match=r"adpulse-h1 \(10\.231\.(\d+)\.11\) not up within 0 s"
    ) as e:
        with boot_hosts(1):
            pytest.fail("boot_hosts yielded a host that cannot have been up")
    assert "last lines of " in str(e.value) and "nspawn.log" in str(e.value)
    subnet = re.search(r"10\.231\.(\d+)\.11", str(e.value))
    assert subnet is not None
    k = subnet.group(1)
    left = [
        *Path("/sys/class/net").glob(f"adp{k}h*"),
        Path(f"/sys/class/net/adpulse-br{k}"),
        *Path("/run/netns").glob(f"adpulse-{k}-h*"),
        *Path(tempfile.gettempdir()).glob(f"adpulse-hosts-{k}-*"),
    ]
    assert [path for path in left if path.exists()] == []


def test_a_failed_image_build_says_why_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hosts_module, "SUITE", "no-such-suite")
    with pytest.raises(HostError, match=r"debootstrap .* exited with 1; last lines of .*") as e:
        hosts_module.build_root(tmp_path)
    assert "no-such-suite" in str(e.value)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith((".lock", ".log"))] == []


def test_missing_tools_fail_unless_skipping_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool == "debootstrap" else "/x")
    monkeypatch.delenv("ADPULSE_ALLOW_SKIP_HOSTS", raising=False)
    with pytest.raises(
        pytest.fail.Exception, match=r"need debootstrap \(Debian package debootstrap\)"
    ):
        hosts_module.skip_unless_possible()
    monkeypatch.setenv("ADPULSE_ALLOW_SKIP_HOSTS", "1")
    with pytest.raises(pytest.skip.Exception, match=r"scripts/system-deps\.sh"):
        hosts_module.skip_unless_possible()
