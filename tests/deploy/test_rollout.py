"""The rolling deploy end to end: real releases onto three real systemd hosts behind HAProxy.

See tests/deploy/stack_on_hosts.py for what the services reach and what that leaves out. The
tests run in file order and share the hosts: each starts from the state the previous one left
(the first deploys onto fresh hosts), as a stack lives through its deploys, and each leaves
every host serving. The releases on the way: `first`; `second` (rolled to under traffic);
`broken` (rolled back on the first host); back to `first` (the rollback); `third` and
`uninstallable` (the failed attempts, never switched to). Pruning runs on a host of its own.
"""

from __future__ import annotations

import itertools
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from adpulse.errors import AdpulseError
from deploy import audit, layout
from deploy.balancer import SERVING
from deploy.balancer_haproxy import HaproxyBalancer
from deploy.host_step import PREVIOUS
from deploy.inventory import Host, host_order
from deploy.lock import LockHeld, acquire, lock_target, release
from deploy.release import Release, build_release
from deploy.remote_state import RemoteState, read_state
from deploy.rollout import (
    DeployError,
    Gate,
    Opener,
    Options,
    _prune,
    deploy,
    desired_contents,
    previous_release,
)
from deploy.ssh import Connection, Target, connect
from tests.deploy.stack_on_hosts import STACK, ProcessArgs, StackOnHosts, stack_on_hosts
from tests.support.haproxy import Steady
from tests.support.hosts import boot_hosts, skip_unless_possible
from tests.support.releases import variant

PLATFORM = "manylinux_2_36_x86_64"  # the test hosts' platform; production's is aarch64
UNITS = tuple(layout.unit_name(s) for s in layout.SERVICES)
# A release whose API never becomes ready: /readyz answers 503 whatever ClickHouse says.
BROKEN_READYZ = {
    "api/routers/health.py": (
        '    if clickhouse != "ok":\n        status = "down"',
        '    if True:\n        status = "down"',
    )
}
# A release the installer cannot install on the hosts: its wheel needs a package the release lacks.
NEEDS_A_MISSING_PACKAGE = {
    "pyproject.toml": (
        "dependencies = [\n",
        'dependencies = [\n    "adpulse-no-such-package==1.0",\n',
    )
}
# What a deploy cut short could leave on a host: a release without its manifest, an upload in
# .incoming, a half-made `current` link, a file's kept copy, an upload's temporary file.
LEFTOVERS = """\
r={releases}
for d in "$r"/*/; do [ -d "$d" ] && [ ! -e "$d/manifest.json" ] && echo "incomplete release $d"
done
[ ! -d "$r/.incoming" ] || find "$r/.incoming" -mindepth 1 -printf 'upload left: %p\\n'
find "$r" -mindepth 1 -maxdepth 1 -name '.*' ! -name .incoming -printf 'stray: %p\\n'
find {base} -mindepth 1 -maxdepth 1 -name '.current-*' -printf 'link left: %p\\n'
find /etc/adpulse /etc/systemd/system -name '*{prev}' -printf 'copy left: %p\\n'
find /etc/adpulse /etc/systemd/system -maxdepth 1 -name '.*.??????' -printf 'temp left: %p\\n'
true
"""


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Release]:
    skip_unless_possible()
    out = tmp_path_factory.mktemp("releases")
    first = build_release(out, platform=PLATFORM, allow_dirty=True)
    return {
        "first": first,
        "second": variant(first, out, "second", {}),
        "broken": variant(first, out, "broken", BROKEN_READYZ),
        "third": variant(first, out, "third", {}),
        "uninstallable": variant(first, out, "uninstallable", NEEDS_A_MISSING_PACKAGE),
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackOnHosts]:
    skip_unless_possible()
    work = tmp_path_factory.mktemp("stack")
    with boot_hosts(3) as hosts, stack_on_hosts(hosts, work) as s:
        yield s


def _balancer(stack: StackOnHosts) -> HaproxyBalancer:
    return HaproxyBalancer(
        stack.balancer.socket_path, ["api", "dashboard"], drain_deadline=10, enable_deadline=60
    )


def _options(**overrides: object) -> Options:
    base = {"user": "root", "health_timeout_s": 90.0, "gate": Gate(window_s=3, min_requests=1)}
    return Options(**{**base, **overrides})  # type: ignore[arg-type]


def _hosts(stack: StackOnHosts) -> tuple[Host, ...]:
    return host_order(stack.inventory.app_hosts)


def _target(host: Host) -> Target:
    return Target(host.name, host.private_ip, user="root")


def _on_each(stack: StackOnHosts, command: str) -> dict[str, str]:
    """`command`'s stdout on every app host, by host name."""
    out = {}
    for host in _hosts(stack):
        with stack.opener(_target(host)) as conn:
            out[host.name] = conn.run(command, timeout=120).stdout
    return out


def _states(stack: StackOnHosts) -> dict[str, RemoteState]:
    states = {}
    for host in _hosts(stack):
        with stack.opener(_target(host)) as conn:
            states[host.name] = read_state(conn, ())
    return states


def _started(states: dict[str, RemoteState]) -> dict[tuple[str, str], int]:
    """When each unit of each host last started: unchanged means not restarted."""
    return {(h, u): s.units[u].started_us for h, s in states.items() for u in UNITS}


def _get(url: str) -> int:
    """The status of `GET url`; an error status fails the test showing the body."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{url}: {exc.code}: {exc.read()[:500]!r}") from None


def _leftovers(stack: StackOnHosts) -> dict[str, list[str]]:
    script = LEFTOVERS.format(releases=layout.RELEASES, base=layout.BASE, prev=PREVIOUS)
    return {name: out.splitlines() for name, out in _on_each(stack, script).items()}


def _assert_serving(stack: StackOnHosts, version: str) -> None:
    """Every host runs `version`, answers each health check itself and serves in HAProxy."""
    balancer = _balancer(stack)
    for name, state in _states(stack).items():
        assert state.current == version, name
        for unit in UNITS:
            assert (state.units[unit].active, state.units[unit].release) == ("active", version)
    for host in _hosts(stack):
        assert _get(f"http://{host.private_ip}:{stack.inventory.api_port}/readyz") == 200
        assert _get(f"http://{host.private_ip}:{stack.inventory.dashboard_port}/healthz") == 200
        assert balancer.state(host) == SERVING, host.name


def _host_now(conn: Connection) -> int:
    return int(conn.run("date +%s").stdout)


def _starts_since(stack: StackOnHosts, since: dict[str, int]) -> dict[tuple[str, str], int]:
    """How many times systemd started each unit on each host since `since[host]` (epoch s)."""
    counts = {}
    for host in _hosts(stack):
        with stack.opener(_target(host)) as conn:
            for unit in UNITS:
                out = conn.run(
                    f"journalctl -u {unit} --since @{since[host.name]} -o cat --no-pager "
                    "| grep -c '^Started ' || true"
                ).stdout
                counts[(host.name, unit)] = int(out.strip() or 0)
    return counts


def test_a_first_deploy_brings_every_service_up_and_a_second_restarts_nothing(
    stack: StackOnHosts, releases: dict[str, Release]
) -> None:
    said: list[str] = []
    release = releases["first"]
    deploy(
        stack.inventory, stack.opener, _balancer(stack), _options(), said.append, release=release
    )
    states = _states(stack)
    for name, state in states.items():
        assert state.current == release.version, (name, said)
        for unit in UNITS:
            assert state.units[unit].active == "active", (name, unit, said)
            assert state.units[unit].release == release.version
    for host in stack.hosts:  # over the network, each service's own health check
        assert _get(f"http://{host.ip}:8000/readyz") == 200
        assert _get(f"http://{host.ip}:3000/healthz") == 200
        assert _get(f"http://{host.ip}:9108/healthz") == 200
    assert _get(stack.balancer.url("api", "/readyz")) == 200

    again: list[str] = []
    deploy(
        stack.inventory, stack.opener, _balancer(stack), _options(), again.append, release=release
    )
    after = _states(stack)
    for name in states:
        for unit in UNITS:
            assert after[name].units[unit].started_us == states[name].units[unit].started_us
            assert after[name].units[unit].main_pid == states[name].units[unit].main_pid
    assert sum("nothing to do" in line for line in again) == 3, again


def test_b_dry_run_prints_each_hosts_plan_and_changes_nothing(
    stack: StackOnHosts, releases: dict[str, Release]
) -> None:
    first, second = releases["first"].version, releases["second"].version
    paths = sorted(desired_contents(stack.inventory))
    look = (
        f"ls -A {layout.RELEASES} {layout.RELEASES}/.incoming {layout.BASE} 2>&1; "
        f"cat {layout.AUDIT_LOG}; ls -A {layout.DEPLOY_STATE_DIR}"
    )

    def snapshot() -> dict[str, tuple[RemoteState, str]]:
        seen = {}
        for host in _hosts(stack):
            with stack.opener(_target(host)) as conn:
                seen[host.name] = (read_state(conn, paths), conn.run(look).stdout)
        return seen

    before = snapshot()
    said: list[str] = []
    outcomes = deploy(
        stack.inventory,
        stack.opener,
        _balancer(stack),
        _options(dry_run=True),
        said.append,
        release=releases["second"],
    )
    assert snapshot() == before
    assert [o.verdict for o in outcomes] == ["dry run"] * 3
    headers = [i for i, line in enumerate(said) if not line.startswith(" ")]
    plans = {said[i]: said[i + 1 : j] for i, j in itertools.pairwise(headers)}
    for host in _hosts(stack):
        plan = plans[f"{host.name} ({host.private_ip}):"]
        assert plan[0].startswith(f"  upload and install release {second} ("), plan
        assert plan[0].endswith(" MB)"), plan
        assert plan[1:] == [
            f"  switch {layout.CURRENT} from {first} to release {second}",
            *(f"  restart {unit}: runs release {first}, not {second}" for unit in UNITS),
        ]
    assert said[-1] == f"dry run: nothing changed on 3 host(s) of stack {STACK}"


def test_c_a_rolling_deploy_under_steady_traffic_fails_no_request(
    stack: StackOnHosts, releases: dict[str, Release]
) -> None:
    second = releases["second"].version
    before = _states(stack)
    since = {h: int(t) for h, t in _on_each(stack, "date +%s").items()}
    said: list[str] = []
    urls = [stack.balancer.url("api", "/readyz"), stack.balancer.url("dashboard", "/healthz")]
    with Steady(urls, threads=4, gap=0.02) as traffic:
        deploy(
            stack.inventory,
            stack.opener,
            _balancer(stack),
            _options(),
            said.append,
            release=releases["second"],
        )
    assert traffic.failures == [], said
    assert all(n > 50 for n in traffic.answered.values()), traffic.answered
    _assert_serving(stack, second)
    after = _started(_states(stack))
    for key, started in _started(before).items():
        assert after[key] != started, key
    assert set(_starts_since(stack, since).values()) == {1}
    assert [line for line in said if "draining" in line] == [
        f"{h.name}: draining from the load balancer" for h in _hosts(stack)
    ]
    assert stack.leaks("\n".join(said)) == []
    assert _leftovers(stack) == {h.name: [] for h in _hosts(stack)}


def test_d_a_release_failing_its_health_check_is_rolled_back_on_the_first_host_only(
    stack: StackOnHosts, releases: dict[str, Release]
) -> None:
    second, broken = releases["second"].version, releases["broken"].version
    first_host, *others = _hosts(stack)
    before = _states(stack)
    said: list[str] = []
    with pytest.raises(DeployError) as failed:
        deploy(
            stack.inventory,
            stack.opener,
            _balancer(stack),
            _options(health_timeout_s=30.0),
            said.append,
            release=releases["broken"],
        )
    message = str(failed.value)
    assert message.startswith(f"{first_host.name}: not healthy:\n"), message
    assert re.search(r"adpulse-api /readyz \(http://[^)]+/readyz\): .*503", message), message
    journal = re.search(
        r"\n  adpulse-api\.service is active; its last journal lines:\n((?:    .*\n)+)", message
    )
    assert journal is not None, message
    assert first_host.name in journal.group(1), message  # short-iso lines name the host
    assert f"{first_host.name} is back on release {second}" in message
    assert message.endswith(f"stopped: hosts after {first_host.name} were not touched")
    assert stack.leaks(message + "\n".join(said)) == []

    after = _states(stack)
    state = after[first_host.name]
    assert state.current == second
    assert broken in state.releases  # installed beside the others, never switched to again
    for unit in UNITS:
        assert (state.units[unit].active, state.units[unit].release) == ("active", second)
    assert _get(f"http://{first_host.private_ip}:{stack.inventory.api_port}/readyz") == 200
    assert _balancer(stack).state(first_host) == SERVING
    for host in others:
        assert after[host.name].current == second
        for unit in UNITS:
            assert after[host.name].units[unit] == before[host.name].units[unit], unit
    assert _leftovers(stack) == {h.name: [] for h in _hosts(stack)}
    with stack.opener(_target(first_host)) as conn:
        events = audit.read(conn, 5)
    rolled = [e for e in events if e.get("outcome") == "rolled back"]
    assert rolled and rolled[-1]["version"] == broken, events


def test_e_rollback_goes_to_the_release_before_current_with_no_secret_in_process_arguments(
    stack: StackOnHosts, releases: dict[str, Release]
) -> None:
    """`adpulse rollback` without `--to`: the release installed before the current one. While
    every unit restarts, `ps -eo args` on every host shows no secret value."""
    first = releases["first"].version
    states = _states(stack)
    assert {previous_release(s) for s in states.values()} == {first}
    said: list[str] = []
    with ProcessArgs(stack) as ps:
        deploy(
            stack.inventory,
            stack.opener,
            _balancer(stack),
            _options(command="adpulse rollback"),
            said.append,
            version=first,
        )
    assert ps.errors == []
    assert ps.samples >= 3
    assert ps.leaks == []
    _assert_serving(stack, first)
    assert {previous_release(s) for s in _states(stack).values()} == {None}  # first is oldest
    assert stack.leaks("\n".join(said)) == []


def test_f_no_secret_in_unit_files_journal_audit_log_and_secret_files_are_root_only(
    stack: StackOnHosts,
) -> None:
    """After every deploy so far (the failed one's journal included)."""
    where = {
        "unit files": "cat /etc/systemd/system/adpulse-*",
        "common.env (world-readable)": f"cat {layout.COMMON_ENV}",
        "journal": "journalctl --no-pager",
        "audit log": f"cat {layout.AUDIT_LOG}",
    }
    for what, command in where.items():
        for name, text in _on_each(stack, command).items():
            assert len(text) > 100, (name, what)
            assert stack.leaks(text) == [], (name, what)
    modes = _on_each(stack, "stat -c '%n %U:%G %a' /etc/adpulse/*.env")
    expected = [f"{layout.COMMON_ENV} root:root 644"] + [
        f"{layout.service_env(s)} root:root 600" for s in sorted(layout.SERVICES)
    ]
    for name, out in modes.items():
        assert sorted(out.splitlines()) == sorted(expected), name


def _attempt_third(
    stack: StackOnHosts,
    releases: dict[str, Release],
    opener: Opener | None = None,
    name: str = "third",
    **inv: object,
) -> tuple[str, list[str]]:
    """Deploy release `name` (installed nowhere yet, or not on the host that fails), expecting
    it to fail before any host switches; checks every host still serves `first` as it did,
    nothing restarted and nothing half-installed. Returns the error and what was printed."""
    before = _states(stack)
    said: list[str] = []
    with pytest.raises(AdpulseError) as failed:
        deploy(
            replace(stack.inventory, **inv),  # type: ignore[arg-type]
            opener or stack.opener,
            _balancer(stack),
            _options(),
            said.append,
            release=releases[name],
        )
    _assert_serving(stack, releases["first"].version)
    assert _started(_states(stack)) == _started(before)
    assert _leftovers(stack) == {h.name: [] for h in _hosts(stack)}
    assert not [line for line in said if "draining" in line]
    return str(failed.value), said


def test_g_a_wrong_ssh_key_is_refused_before_anything_changes(
    stack: StackOnHosts, releases: dict[str, Release], tmp_path: Path
) -> None:
    key = tmp_path / "id_ed25519"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()
        )
    )
    key.chmod(0o600)

    def opener(target: Target):  # type: ignore[no-untyped-def]
        return connect(target, STACK, stack.known_hosts, key)

    message, _ = _attempt_third(stack, releases, opener)
    lock_host = _hosts(stack)[0]
    assert message == (
        f"{lock_host.name} ({lock_host.private_ip}) refused the key {key} for user root: give "
        "the stack's key with --ssh-key (or add it to ssh-agent), and check --ssh-user"
    )
    third = releases["third"].version
    assert all(third not in s.releases for s in _states(stack).values())


def test_h_a_full_disk_on_one_host_stops_the_deploy_before_any_host_switches(
    stack: StackOnHosts, releases: dict[str, Release]
) -> None:
    """The hosts' disk is this machine's (their root is an overlay on it), so it is not filled:
    the last host's releases directory is put on a 16 MiB tmpfs instead, the releases it holds
    bind-mounted back at their own paths, so `current` and the running services are as they
    were and only a new release lacks room, as on a full disk. Every host is checked before any
    gets an upload, so no host receives the release and none switches."""
    full = _hosts(stack)[-1]
    keep = "/run/adpulse-test-releases"
    r = layout.RELEASES
    small = (
        f"set -e; mkdir -p {keep}; mount --bind {r} {keep}; mount --make-private {keep}; "
        f"mount -t tmpfs -o size=16m,mode=0755 tmpfs {r}; "
        f'for d in {keep}/*/; do v=$(basename "$d"); mkdir {r}/$v; mount --bind "$d" {r}/$v; done'
    )
    with stack.opener(_target(full)) as conn:
        before = conn.run(f"ls -A {r}").stdout
        try:
            conn.run(small)
            assert conn.free_bytes(str(r))[1] == str(r)
            message, _ = _attempt_third(stack, releases)
            assert conn.run(f"ls -A {r}").stdout == before.replace(".incoming\n", "")
        finally:
            conn.run(f"umount -R {r}; umount {keep}; rmdir {keep}", check=False)
        assert conn.free_bytes(str(r))[1] != str(r)  # back on the host's own disk
    assert message.startswith(
        f"release {releases['third'].version} could not be installed; no host was switched, "
        "every host still runs what it ran:\n"
    ), message
    assert re.search(
        rf"\n  {full.name}: {r} has 16\.0 MiB free \(\d+ bytes, on {r}\), the release needs "
        r"[\d.]+ MiB \(\d+ bytes\): nothing was uploaded; free space on ",
        message,
    ), message
    assert len(message.splitlines()) == 2, message
    third = releases["third"].version
    assert [third in s.releases for s in _states(stack).values()] == [False, False, False]


def test_i_a_wrong_host_key_is_refused_naming_both_fingerprints(
    stack: StackOnHosts, releases: dict[str, Release], tmp_path: Path
) -> None:
    """The last host's known_hosts line holds the first host's key: a host that is not who
    the stack knew."""
    *_, imposter = stack.hosts
    lines = [
        f"{h.ip} {(stack.hosts[0] if h is imposter else h).host_public_key}\n" for h in stack.hosts
    ]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("".join(lines))

    def opener(target: Target):  # type: ignore[no-untyped-def]
        return connect(target, STACK, known_hosts, stack.key_file)

    message, _ = _attempt_third(stack, releases, opener)
    problem = message.splitlines()[1]
    assert re.fullmatch(
        rf"  {imposter.name} \({imposter.ip}\) offered host key SHA256:\S+, but the stack's "
        rf"known_hosts \({known_hosts}\) has SHA256:\S+: refused\. If the host was replaced, .*"
        rf"`adpulse deploy trust --stack {STACK} --host {imposter.name}`",
        problem,
    ), message
    third = releases["third"].version
    assert not any(third in s.releases for s in _states(stack).values())  # checked first


def test_j_an_unreachable_host_stops_the_deploy_before_any_host_switches(
    stack: StackOnHosts, releases: dict[str, Release]
) -> None:
    """A fourth app host at an address on the hosts' bridge that nobody has."""
    gone = Host(
        "adpulse-h9", "app", "i-adpulse-h9", stack.gateway.rsplit(".", 1)[0] + ".250", "us-east-1a"
    )
    message, _ = _attempt_third(stack, releases, app_hosts=(*stack.inventory.app_hosts, gone))
    assert re.search(
        rf"\n  cannot reach {gone.name} at {gone.private_ip}:22 \([^)]+\): check that the host "
        "is running and that the security group",
        message,
    ), message
    assert len(message.splitlines()) == 2, message


def test_k_a_release_that_fails_to_install_leaves_nothing_half_installed(
    stack: StackOnHosts, releases: dict[str, Release]
) -> None:
    """The installer stops half-way on every host: the half-made release directory
    and the uploaded archive are removed, and the error says why in a line per host."""
    bad = releases["uninstallable"].version
    message, _ = _attempt_third(stack, releases, name="uninstallable")
    lines = message.splitlines()
    assert lines[0] == (
        f"release {bad} could not be installed; no host was switched, every host still runs "
        "what it ran:"
    )
    assert len(lines) == 4, message
    for host, line in zip(_hosts(stack), lines[1:], strict=True):
        assert re.fullmatch(
            rf"  {host.name}: installing release {bad} failed \(exit 1\): .*No solution found "
            r".*adpulse-no-such-package.*; what it had made was removed",
            line,
        ), message
    assert all(bad not in s.releases for s in _states(stack).values())


def _refused_by_alice_s_lock(
    stack: StackOnHosts, releases: dict[str, Release], age: timedelta | None = None
) -> tuple[LockHeld, dict[str, Any]]:
    """Deploy `second` while alice@elsewhere holds the stack's lock (taken `age` ago by the
    lock host's clock, or now); checks no host changed. Returns the refusal and the last
    audit record."""
    before = _states(stack)
    with stack.opener(lock_target(stack.inventory, "root")) as conn:
        then = None if age is None else datetime.fromtimestamp(_host_now(conn), UTC) - age
        held = acquire(conn, STACK, "alice@elsewhere", "0123456789ab", "adpulse deploy", then)
        try:
            with pytest.raises(LockHeld) as refused:
                deploy(
                    stack.inventory,
                    stack.opener,
                    _balancer(stack),
                    _options(),
                    lambda line: None,
                    version=releases["second"].version,
                )
        finally:
            release(conn, held)
        last = audit.read(conn, 1)[-1]
    assert _states(stack) == before
    return refused.value, last


def test_l_a_lock_held_by_another_deploy_is_respected(
    stack: StackOnHosts, releases: dict[str, Release]
) -> None:
    refused, last = _refused_by_alice_s_lock(stack, releases)
    assert re.fullmatch(
        rf"stack {STACK} is being deployed by alice@elsewhere \(version 0123456789ab, started "
        r"\d+ s ago, `adpulse deploy`\); wait for it, or if that deploy died, clear it with "
        rf"`adpulse deploy unlock --stack {STACK}`",
        str(refused),
    ), str(refused)
    assert (last["event"], last["held_by"]) == ("lock-refused", "alice@elsewhere")


def test_m_a_stale_lock_is_reported_with_its_owner_age_and_how_to_clear_it(
    stack: StackOnHosts, releases: dict[str, Release]
) -> None:
    refused, _ = _refused_by_alice_s_lock(stack, releases, timedelta(hours=3, minutes=5))
    assert re.fullmatch(
        rf"stack {STACK} is locked by alice@elsewhere \(version 0123456789ab, started 3 h 5 min "
        r"ago, `adpulse deploy`\); stale: older than 2 h, so that deploy most likely died; if it "
        rf"\(pid \d+ on elsewhere\) is no longer running, clear it with `adpulse deploy unlock "
        rf"--stack {STACK}`",
        str(refused),
    ), str(refused)
    assert refused.holder.stale


def test_n_pruning_keeps_five_releases_and_never_current_nor_the_one_before(
    tmp_path: Path,
) -> None:
    """On a host of its own: eight complete releases (a manifest each, installed a minute
    apart), a directory that is no release, and `current` where each case puts it."""
    skip_unless_possible()
    names = [f"{0xAAAAAA000000 + i:012x}" for i in range(1, 9)]
    make = "; ".join(
        f"mkdir -p {layout.release_dir(v)} && echo '{{}}' > {layout.release_dir(v)}/manifest.json"
        f" && touch -d @{1_700_000_000 + 60 * i} {layout.release_dir(v)}/manifest.json"
        for i, v in enumerate(names)
    )
    stray = layout.RELEASES / "not-a-release"

    def point(conn: Connection, version: str) -> None:
        conn.run(" && ".join(layout.switch_commands(version)))

    with boot_hosts(1) as (host,):
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(host.known_hosts_line + "\n")
        target = Target(host.name, host.ip, user="root")
        with connect(target, STACK, known_hosts, host.ssh_key_path) as conn:
            conn.run(f"set -e; {make}; mkdir -p {stray}")
            said: list[str] = []
            point(conn, names[1])  # rolled back far: its predecessor is older than the newest 5
            _prune(conn, said.append)
            assert read_state(conn, ()).releases == (names[0], names[1], *names[3:])
            point(conn, names[-1])
            _prune(conn, said.append)
            assert read_state(conn, ()).releases == tuple(names[3:])
            assert conn.run(f"ls -d {stray}").stdout.strip() == str(stray)
    assert said == [
        f"{host.name}: removed old releases {names[2]}",
        f"{host.name}: removed old releases {names[0]}, {names[1]}",
    ]
