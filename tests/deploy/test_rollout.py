"""The rolling deploy end to end: real releases onto three real systemd hosts behind HAProxy.

See tests/deploy/stack_on_hosts.py for what the services reach and what that leaves out. The
tests run in file order and share the hosts: each starts from the state the previous one left
(the first deploys onto fresh hosts), as a stack lives through its deploys.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest

from deploy import layout
from deploy.balancer_haproxy import HaproxyBalancer
from deploy.inventory import host_order
from deploy.release import Release, build_release
from deploy.remote_state import RemoteState, read_state
from deploy.rollout import Gate, Options, deploy
from deploy.ssh import Target
from tests.deploy.stack_on_hosts import StackOnHosts, stack_on_hosts
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


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Release]:
    skip_unless_possible()
    out = tmp_path_factory.mktemp("releases")
    first = build_release(out, platform=PLATFORM, allow_dirty=True)
    return {
        "first": first,
        "second": variant(first, out, "second", {}),
        "broken": variant(first, out, "broken", BROKEN_READYZ),
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


def _states(stack: StackOnHosts) -> dict[str, RemoteState]:
    states = {}
    for host in host_order(stack.inventory.app_hosts):
        with stack.opener(Target(host.name, host.private_ip, user="root")) as conn:
            states[host.name] = read_state(conn, ())
    return states


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return int(answer.status)


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
