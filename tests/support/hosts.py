"""Real Debian 12 hosts for the deploy tests (#14): systemd and sshd in containers, each at its
own IP on a private bridge that the test process sits on too.

The image is built once per recipe with debootstrap and cached (`build_root`). Each host boots
it with systemd-nspawn under a writable overlay of its own, in a network namespace of its own,
joined to the session's bridge `adpulse-br<k>` (10.231.<k>.0/24, k unique per live session).
Teardown powers each host off, deletes its namespace (and with it the veth) and its overlay;
what a killed session left behind is cleaned by the next session that takes its subnet.
"""

from __future__ import annotations

import base64
import ctypes
import fcntl
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from tests.support.processes import descendants, wait_gone

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "systemd,systemd-sysv,openssh-server,python3,python3-venv,dbus,iproute2,curl,ca-certificates"
)
# Bump when _finish_root changes: the cache key is this recipe, not the code.
RECIPE = 1
CACHE_DIR = Path("/var/tmp")
LOCK_DIR = Path("/run/adpulse-test-hosts")
PROPAGATE_DIR = Path("/run/systemd/nspawn/propagate")
BUILD_TIMEOUT = 900.0
BOOT_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
SSHD_CONFIG = """# adpulse test host: keys only, the one host key the test knows
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
"""
# Timers that would reach for the network: the hosts have none beyond their bridge.
MASKED_UNITS = ("apt-daily.timer", "apt-daily-upgrade.timer")
PR_SET_PDEATHSIG = 1


class HostError(RuntimeError):
    """A test host could not be built, booted or torn down; the message says which and why."""


def missing_requirements() -> list[str]:
    """What this machine lacks to boot test hosts, in words; empty when nothing is missing."""
    missing = [] if os.geteuid() == 0 else ["root (systemd-nspawn and ip netns need it)"]
    for tool, package in (
        ("systemd-nspawn", "systemd-container"),
        ("debootstrap", "debootstrap"),
        ("ip", "iproute2"),
    ):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (Debian package {package})")
    if "overlay" not in Path("/proc/filesystems").read_text():
        missing.append("the overlay file system in the kernel")
    return missing


def skip_unless_possible() -> None:
    """Fail, naming what is missing, unless test hosts can boot here; skip instead only where
    ADPULSE_ALLOW_SKIP_HOSTS=1 (CI installs everything, so there a gap is a failure)."""
    missing = missing_requirements()
    if not missing:
        return
    message = "test hosts need " + ", ".join(missing) + ": run scripts/system-deps.sh as root"
    if os.environ.get("ADPULSE_ALLOW_SKIP_HOSTS") == "1":
        pytest.skip(message)
    pytest.fail(message + " (or set ADPULSE_ALLOW_SKIP_HOSTS=1 to skip)", pytrace=False)


# --- the image ------------------------------------------------------------------------------


def recipe_hash(packages: str = PACKAGES) -> str:
    """Names the cached image: changes whenever what goes into it does."""
    recipe = json.dumps([SUITE, packages, RECIPE]).encode()
    return hashlib.sha256(recipe).hexdigest()[:12]


def with_packages(*extra: str) -> str:
    """The debootstrap `--include` list of an image with `extra` Debian packages besides the
    ones every host has (PACKAGES): such an image is cached under a name of its own."""
    return ",".join([PACKAGES, *extra])


def build_root(cache_dir: Path = CACHE_DIR, packages: str = PACKAGES) -> Path:
    """The Debian 12 root all hosts boot, built once into `cache_dir` and reused after;
    `packages` (see `with_packages`) is what debootstrap includes.

    Built into a temporary folder and renamed, so a root that exists is complete; a lock makes
    a second session wait for a build under way instead of starting its own."""
    target = cache_dir / f"adpulse-test-root-{recipe_hash(packages)}"
    if target.is_dir():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_dir():
            return target
        for stale in cache_dir.glob(f".{target.name}.tmp-*"):
            _remove_tree(stale)  # a build killed half-way; we hold the lock, so none runs now
        tmp = cache_dir / f".{target.name}.tmp-{os.getpid()}"
        log = cache_dir / f".{target.name}.log"
        command = ["debootstrap", "--variant=minbase", f"--include={packages}", SUITE]
        try:
            _run_logged([*command, str(tmp), MIRROR], log, BUILD_TIMEOUT)
            _finish_root(tmp)
        except BaseException:
            _remove_tree(tmp)
            raise
        tmp.rename(target)
    return target


def _finish_root(root: Path) -> None:
    """What every host shares: no host keys (each host gets its own), no machine id, sshd by
    key only and enabled, no resolver and no apt timers (no network beyond the bridge)."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/ssh/sshd_config.d/adpulse-test.conf").write_text(SSHD_CONFIG)
    (root / "etc/machine-id").write_text("")
    (root / "etc/resolv.conf").unlink(missing_ok=True)
    (root / "etc/resolv.conf").write_text("# test host: no resolver, no network past the bridge\n")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
    wants = root / "etc/systemd/system/multi-user.target.wants/ssh.service"
    if not wants.is_symlink():
        wants.parent.mkdir(parents=True, exist_ok=True)
        wants.symlink_to("/lib/systemd/system/ssh.service")
    for unit in MASKED_UNITS:
        (root / "etc/systemd/system" / unit).unlink(missing_ok=True)
        (root / "etc/systemd/system" / unit).symlink_to("/dev/null")
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()


# --- the hosts ------------------------------------------------------------------------------


@dataclass
class Host:
    """One booted test host. `root` is its writable layer over the shared image: what the host
    wrote since boot. Reach it with `ssh`, which checks the host key strictly."""

    name: str
    ip: str
    root: Path
    ssh_key_path: Path
    host_public_key: str  # "ssh-ed25519 AAAA...", as in a known_hosts line
    machine: str
    netns: str
    veth: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _client: paramiko.SSHClient | None = field(default=None, repr=False)

    @property
    def known_hosts_line(self) -> str:
        return f"{self.ip} {self.host_public_key}"

    def connect(self, *, known_key: str | None = None, timeout: float = 5.0) -> Any:
        """A new paramiko SSHClient logged in as root; refuses any host key but `known_key`
        (default: the key this host was given). The caller closes it."""
        kind, blob = (known_key or self.host_public_key).split()[:2]
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.get_host_keys().add(self.ip, kind, paramiko.PKey.from_type_string(kind, _b64(blob)))
        try:
            client.connect(
                self.ip,
                username="root",
                key_filename=str(self.ssh_key_path),
                look_for_keys=False,
                allow_agent=False,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
            )
        except BaseException:
            client.close()
            raise
        return client

    def ssh(self, command: str, *, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run `command` through root's shell on the host; its exit code, stdout and stderr.
        Raises TimeoutError when it runs past `timeout` s, OSError or paramiko.SSHException
        when the host cannot be reached."""
        if self._client is None or not self._client.get_transport().is_active():
            self.close()
            self._client = self.connect()
        channel = self._client.get_transport().open_session(timeout=timeout)
        try:
            channel.exec_command(command)
            out, err = _drain(channel, time.monotonic() + timeout, f"{self.name}: {command}")
            code = int(channel.recv_exit_status())
        finally:
            channel.close()
        return subprocess.CompletedProcess(command, code, out, err)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _drain(channel: Any, deadline: float, what: str) -> tuple[str, str]:
    """Both streams to the end, read side by side so neither fills the shared window."""
    out: list[bytes] = []
    err: list[bytes] = []
    while True:
        if channel.recv_stderr_ready():
            err.append(channel.recv_stderr(65536))
        elif channel.recv_ready():
            out.append(channel.recv(65536))
        elif channel.eof_received and channel.exit_status_ready():
            return b"".join(out).decode(errors="replace"), b"".join(err).decode(errors="replace")
        elif time.monotonic() > deadline:
            raise TimeoutError(f"{what}: still running at its deadline")
        elif channel.eof_received:
            channel.status_event.wait(0.1)  # output done, exit status on its way
        else:
            select.select([channel], [], [], 0.1)


@contextmanager
def boot_hosts(
    n: int, *, cache_dir: Path = CACHE_DIR, packages: str = PACKAGES
) -> Iterator[list[Host]]:
    """`n` booted hosts on a bridge of their own, ready for ssh (sshd answers and systemd says
    running or degraded); all powered off and removed on exit, even on error. `packages`: the
    image's package list (`with_packages`)."""
    root = build_root(cache_dir, packages)
    net = _open_network()
    hosts: list[Host] = []
    ready: set[str] = set()
    try:
        for index in range(1, n + 1):
            hosts.append(_prepare_host(net, index))
            _launch(hosts[-1], net, root)
        deadline = time.monotonic() + BOOT_TIMEOUT
        for host in hosts:
            _wait_ready(host, deadline)
            ready.add(host.name)
        yield hosts
    finally:
        errors: list[HostError] = []
        for host in reversed(hosts):
            try:
                # A host still booting may not heed a poweroff yet (systemd ignores the signal
                # until it has set up its handlers): stop it hard at once instead of waiting.
                stop_host(host, STOP_TIMEOUT if host.name in ready else 0.0)
            except HostError as error:
                errors.append(error)
        _close_network(net)
        if errors:
            raise errors[0]


@pytest.fixture(scope="session")
def test_hosts() -> Iterator[list[Host]]:
    """Three booted Debian 12 hosts shared by the session; a test undoes what it starts."""
    skip_unless_possible()
    with boot_hosts(3) as hosts:
        yield hosts


# --- the network ----------------------------------------------------------------------------


@dataclass
class _Network:
    k: int
    lock: int  # fd holding the subnet's flock for the session's lifetime
    work_dir: Path
    key_path: Path
    public_key: str

    @property
    def bridge(self) -> str:
        return f"adpulse-br{self.k}"

    @property
    def gateway(self) -> str:
        return f"10.231.{self.k}.1"


def _open_network() -> _Network:
    """Take a free 10.231.<k>.0/24 (k from our pid, the next free one if taken), clean what a
    dead session left on it, and put the bridge up with the test process on .1."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    for offset in range(254):
        k = (os.getpid() + offset) % 254 + 1
        fd = os.open(LOCK_DIR / f"{k}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        routes = json.loads(_ip("-j", "route", "show", f"10.231.{k}.0/24") or "[]")
        if any(route.get("dev") != f"adpulse-br{k}" for route in routes):
            os.close(fd)  # someone else's network uses this subnet
            continue
        _clean_stale(k, os.pread(fd, 4096, 0).decode())
        break
    else:
        raise HostError(f"no free subnet in 10.231.0.0/16: all 254 are locked in {LOCK_DIR}")
    work_dir = Path(tempfile.mkdtemp(prefix=f"adpulse-hosts-{k}-"))
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(work_dir).encode(), 0)
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    net = _Network(k, fd, work_dir, work_dir / "id_ed25519", public)
    try:
        private = key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
        _write(net.key_path, private, 0o600)
        _ip("link", "add", net.bridge, "type", "bridge")
        # Packets from the hosts must never be routed off this machine, whatever the host's
        # forwarding setting: IPv4 forwarding is decided per incoming interface.
        Path(f"/proc/sys/net/ipv4/conf/{net.bridge}/forwarding").write_text("0")
        Path(f"/proc/sys/net/ipv6/conf/{net.bridge}/disable_ipv6").write_text("1")
        _ip("addr", "add", f"{net.gateway}/24", "dev", net.bridge)
        _ip("link", "set", net.bridge, "up")
    except BaseException:
        _close_network(net)
        raise
    return net


def _close_network(net: _Network) -> None:
    _delete_link(net.bridge)
    _remove_tree(net.work_dir)
    os.ftruncate(net.lock, 0)
    os.close(net.lock)  # releases the flock; the file stays (unlinking it would race a taker)


def _clean_stale(k: int, work_dir: str) -> None:
    """Remove what a session that died holding subnet k left: its containers, namespaces,
    bridge and work folder."""
    netns_dir = Path("/run/netns")
    for netns in netns_dir.glob(f"adpulse-{k}-h*") if netns_dir.is_dir() else []:
        for pid in _ip("netns", "pids", netns.name).split():
            _kill(int(pid), signal.SIGKILL)
        _ip("netns", "del", netns.name)
    _delete_link(f"adpulse-br{k}")
    for propagate in PROPAGATE_DIR.glob(f"adpulse-{k}-h*"):
        _remove_tree(propagate)
    if work_dir.startswith(tempfile.gettempdir() + "/adpulse-hosts-"):
        _remove_tree(Path(work_dir))


def _prepare_host(net: _Network, index: int) -> Host:
    """Name, address and overlay of host `index`: root's authorized key, a fresh host key,
    hostname and machine id, written into its own layer before boot."""
    name = f"adpulse-h{index}"
    ip = f"10.231.{net.k}.{index + 10}"
    host_dir = net.work_dir / name
    upper = host_dir / "upper"
    host_key = Ed25519PrivateKey.generate()
    public = host_key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    seed = {
        "root/.ssh/authorized_keys": (f"{net.public_key}\n".encode(), 0o600),
        "etc/ssh/ssh_host_ed25519_key": (
            host_key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()),
            0o600,
        ),
        "etc/ssh/ssh_host_ed25519_key.pub": (f"{public} root@{name}\n".encode(), 0o644),
        "etc/hostname": (f"{name}\n".encode(), 0o644),
        "etc/machine-id": (f"{os.urandom(16).hex()}\n".encode(), 0o444),
        "etc/hosts": (f"127.0.0.1 localhost\n{ip} {name}\n".encode(), 0o644),
    }
    for relative, (content, mode) in seed.items():
        (upper / relative).parent.mkdir(parents=True, exist_ok=True)
        _write(upper / relative, content, mode)
    (upper / "root").chmod(0o700)
    (upper / "root/.ssh").chmod(0o700)
    return Host(
        name=name,
        ip=ip,
        root=upper,
        ssh_key_path=net.key_path,
        host_public_key=public,
        machine=f"adpulse-{net.k}-h{index}",
        netns=f"adpulse-{net.k}-h{index}",
        veth=f"adp{net.k}h{index}",
        log_path=host_dir / "nspawn.log",
    )


def _launch(host: Host, net: _Network, root: Path) -> None:
    """Wire the host's namespace to the bridge and start systemd-nspawn in the background."""
    _ip("netns", "add", host.netns)
    _ip("link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
    _ip("link", "set", host.veth, "master", net.bridge, "up")
    _ip("-n", host.netns, "addr", "add", f"{host.ip}/24", "dev", "eth0")
    _ip("-n", host.netns, "link", "set", "eth0", "up")
    _ip("-n", host.netns, "link", "set", "lo", "up")
    _ip("-n", host.netns, "route", "add", "default", "via", net.gateway)
    if ":" in f"{root}{host.root}":
        raise HostError(f"paths with ':' break --overlay: {root}, {host.root}")
    command = [
        "systemd-nspawn",
        "--register=no",
        "--keep-unit",
        f"--machine={host.machine}",
        f"--network-namespace-path=/run/netns/{host.netns}",
        f"--directory={root}",
        # nspawn mounts the overlay in its own mount namespace: nothing to unmount after.
        f"--overlay={root}:{host.root}:/",
        "--resolv-conf=off",
        "--timezone=off",
        "--link-journal=no",
        "--boot",
    ]
    with open(host.log_path, "wb") as log:
        host.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin"), "SYSTEMD_COLORS": "0"},
            start_new_session=True,  # Ctrl-C reaches pytest, whose teardown powers hosts off
            preexec_fn=_die_with_parent,
        )


def _die_with_parent() -> None:
    # If pytest is killed outright, nspawn gets SIGTERM and powers the host off by itself.
    # Fires when the forking *thread* ends: hosts are started from the main thread only.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_ready(host: Host, deadline: float) -> None:
    last = "no answer yet"
    while True:
        assert host.process is not None
        if (code := host.process.poll()) is not None:
            raise HostError(
                f"{host.name}: systemd-nspawn exited with {code} before the host was up"
                + _tail(host)
            )
        left = deadline - time.monotonic()
        if left <= 0:
            raise HostError(
                f"{host.name} ({host.ip}) not up within {BOOT_TIMEOUT:.0f} s; last: {last}"
                + _tail(host)
            )
        try:
            state = host.ssh("systemctl is-system-running --wait", timeout=left).stdout.strip()
        except paramiko.BadHostKeyException as error:
            raise HostError(f"{host.name} ({host.ip}) offered another host key: {error}") from error
        except (OSError, EOFError, paramiko.SSHException) as error:
            last = f"ssh: {error}"
            host.close()
            time.sleep(0.2)
            continue
        if state in ("running", "degraded"):
            return
        last = f"systemctl is-system-running said {state!r}"
        time.sleep(0.2)


def stop_host(host: Host, timeout: float = STOP_TIMEOUT) -> None:
    """Power the host off (SIGTERM to nspawn; SIGKILL to all of it past `timeout` s), delete its
    namespace and veth, and remove its folder. Safe on a host that is half started."""
    host.close()
    process = host.process
    if process is not None and process.poll() is None:
        inside = descendants(process.pid)
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            for pid in inside | {process.pid}:
                _kill(pid, signal.SIGKILL)
            process.wait(10)
        for pid in wait_gone(inside, 10):
            _kill(pid, signal.SIGKILL)
        if left := wait_gone(inside, 5):
            raise HostError(f"{host.name}: processes {sorted(left)} outlived SIGKILL")
    if Path(f"/run/netns/{host.netns}").exists():
        _ip("netns", "del", host.netns)  # takes the veth pair with it, a moment later
    deadline = time.monotonic() + 5
    while Path(f"/sys/class/net/{host.veth}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    _delete_link(host.veth)
    _remove_tree(PROPAGATE_DIR / host.machine)  # nspawn removes it itself, unless killed
    _remove_tree(host.log_path.parent)


# --- small shell ----------------------------------------------------------------------------


def _ip(*args: str) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise HostError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def _delete_link(name: str) -> None:
    try:
        _ip("link", "del", name)
    except HostError as error:
        if "Cannot find device" not in str(error):
            raise


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _write(path: Path, content: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(content)
    path.chmod(mode)


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _tail(host: Host, lines: int = 25) -> str:
    try:
        text = host.log_path.read_text(errors="replace").splitlines()[-lines:]
    except OSError as error:
        return f"\n(no nspawn log: {error})"
    return f"\nlast lines of {host.log_path}:\n" + "\n".join(text)


def _run_logged(command: list[str], log: Path, timeout: float) -> None:
    """Run `command` with its output to `log`; on failure or timeout kill its whole process
    group and raise with the log's last lines."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            outcome = f"exited with {process.wait(timeout)}"
        except subprocess.TimeoutExpired:
            outcome = f"still ran after {timeout:.0f} s"
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    if outcome != "exited with 0":
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise HostError(f"{' '.join(command)} {outcome}; last lines of {log}:\n{tail}")


def _remove_tree(path: Path) -> None:
    """Remove `path`, never crossing into a file system mounted below it (a debootstrap that
    was killed leaves /proc and /sys mounted in its target); those are unmounted first."""
    prefix = f"{path}/"
    mounts = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(prefix)
    ]
    for mount in sorted(mounts, reverse=True):
        subprocess.run(["umount", "--lazy", mount], check=False)
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True)
