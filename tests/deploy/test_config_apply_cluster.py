"""`config apply` on a real replicated cluster: three Debian hosts, clickhouse-server 18.16 and
ZooKeeper (tests/support/ch_cluster.py). A live change is reloaded without a restart; a change
that needs one restarts one node at a time while the others answer, each waiting for its
replicas; a Keeper node is not restarted while another Keeper is down."""

from __future__ import annotations

import base64
import dataclasses
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from functools import partial

import pytest

from adpulse.clickhouse.config import ConfigOptions
from deploy.config_apply import ConfigApplyError, Login, Policy, Ssh, Step, apply
from deploy.config_node import PREVIOUS
from deploy.config_plan import ApplyPlan, sha256
from tests.support.ch_cluster import TABLE, ChCluster, answers, ch_cluster, wait_until
from tests.support.hosts import Host

__all__ = ["ch_cluster"]

pytestmark = pytest.mark.slow
POLICY = Policy(timeout_s=180.0)
# The test process sits on the hosts' bridge, 10.231.<k>.1; the nodes start admitting loopback only.
BRIDGE = ConfigOptions(networks=("10.231.0.0/16", "::1", "127.0.0.1"))
CONFIG = "/etc/clickhouse-server/config.d/adpulse.xml"


def run(
    cluster: ChCluster,
    rendered: dict[str, str],
    dry_run: bool = False,
    progress: Callable[[Step], None] | None = None,
) -> ApplyPlan:
    ssh = Ssh(cluster.known_hosts, cluster.hosts[0].ssh_key_path)
    return apply(
        "test",
        cluster.topology,
        rendered,
        cluster.targets,
        cluster.targets[cluster.hosts[0].name],  # the lock's host (an app host in a stack)
        ssh,
        Login("admin", cluster.admin_password),
        dry_run=dry_run,
        policy=POLICY,
        progress=progress or (lambda step: None),
    )


def admin_over_network(cluster: ChCluster, ip: str) -> int:
    """HTTP status of `SELECT 1` as admin from the test process to the node at `ip`."""
    request = urllib.request.Request(f"http://{ip}:8123/?query=SELECT%201")
    token = base64.b64encode(f"admin:{cluster.admin_password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_a_users_change_is_reloaded_without_a_restart(ch_cluster: ChCluster) -> None:
    cluster = ch_cluster
    ip = cluster.hosts[1].ip
    if admin_over_network(cluster, ip) == 200:  # another test got here first
        pytest.skip("the nodes already admit the bridge")
    before = {h.name: cluster.uptime(h) for h in cluster.hosts}
    steps: list[Step] = []
    plan = run(cluster, cluster.rendered(BRIDGE), progress=steps.append)
    assert [n.action for n in plan.nodes] == ["reload"] * 3
    assert [s.step for s in steps] == ["write", "reloaded"] * 3
    for host in cluster.hosts:
        assert cluster.uptime(host) >= before[host.name], f"{host.name} restarted"
        assert admin_over_network(cluster, host.ip) == 200
    audit = cluster.hosts[2].ssh("tail -n 1 /var/log/adpulse/audit.log").stdout
    assert '"event":"config-apply"' in audit and '"action":"reload"' in audit
    assert '"outcome":"ok"' in audit and cluster.admin_password not in audit
    for host in cluster.hosts:  # the client login is gone
        assert host.ssh("test -e /run/adpulse/config-apply-client.xml").returncode == 1
    again = run(cluster, cluster.rendered(BRIDGE))
    assert [n.action for n in again.nodes] == ["none"] * 3


def restart_change(cluster: ChCluster) -> dict[str, str]:
    """A change only a restart applies: the interserver (replication) port, 9009 -> 9010."""
    ports = dataclasses.replace(cluster.topology.ports, interserver_http=9010)
    topology = dataclasses.replace(cluster.topology, ports=ports)
    return cluster.rendered(BRIDGE, topology)


def test_a_keeper_node_is_not_restarted_while_another_keeper_is_down(
    ch_cluster: ChCluster,
) -> None:
    cluster = ch_cluster
    rendered = restart_change(cluster)
    third = cluster.hosts[2]
    before = {h.name: cluster.uptime(h) for h in cluster.hosts}
    configs = {h.name: h.ssh(f"sha256sum < {CONFIG}").stdout.split()[0] for h in cluster.hosts}
    if configs[third.name] == sha256(rendered[f"{third.name}/config.d/adpulse.xml"]):
        pytest.skip("the restart change is already applied")
    assert third.ssh("systemctl stop zookeeper").returncode == 0
    try:
        with pytest.raises(ConfigApplyError) as refused:
            run(cluster, rendered)
    finally:
        assert third.ssh("systemctl start zookeeper").returncode == 0
    message = str(refused.value)
    assert message.startswith("refusing to restart adpulse-h")
    assert f"the Keeper on {third.name} does not answer `mntr` on port 2181" in message
    for host in cluster.hosts:  # nothing restarted, nothing written
        assert cluster.uptime(host) >= before[host.name]
        assert host.ssh(f"sha256sum < {CONFIG}").stdout.split()[0] == configs[host.name]


def test_a_restart_goes_one_node_at_a_time_and_waits_for_replicas(ch_cluster: ChCluster) -> None:
    cluster = ch_cluster
    rendered = restart_change(cluster)
    wait_until(
        "ZooKeeper back on every host",
        lambda: all(
            "imok"
            in h.ssh(
                "bash -c 'exec 3<>/dev/tcp/127.0.0.1/2181; printf ruok >&3; timeout 5 cat <&3'"
            ).stdout
            for h in cluster.hosts
        ),
    )
    dry = run(cluster, rendered, dry_run=True)
    assert [n.action for n in dry.nodes] == ["restart"] * 3
    assert all("interserver_http_port" in n.describe() for n in dry.nodes)
    by_name = {h.name: h for h in cluster.hosts}
    inserted = 0
    seen_up: dict[str, list[str]] = {}
    steps: list[Step] = []

    def during(step: Step) -> None:
        nonlocal inserted
        steps.append(step)
        if step.step != "restarted":
            return
        # The restarted node is (or was just) down: every other node answers, and takes writes
        # the restarted one must fetch before it counts as caught up.
        others = [h for h in cluster.hosts if h.name != step.host]
        seen_up[step.host] = [h.name for h in others if cluster.query(h, "SELECT 1") == "1"]
        cluster.query(others[0], f"INSERT INTO {TABLE} SELECT number FROM numbers({inserted}, 100)")
        inserted += 100

    started = time.monotonic()
    plan = run(cluster, rendered, progress=during)
    took = time.monotonic() - started
    order = [n.host for n in plan.nodes]
    assert [s.host for s in steps if s.step == "restart"] == order
    assert [s.step for s in steps] == ["write", "restart", "restarted", "healthy"] * 3
    for name in order:
        assert sorted(seen_up[name]) == sorted(n for n in order if n != name)
        host = by_name[name]
        assert cluster.uptime(host) < took, f"{name} was not restarted"
        assert host.ssh("ss -Hltn 'sport = :9010'").stdout.strip(), f"{name} not on 9010"
    healthy = [s.detail for s in steps if s.step == "healthy"]
    assert all(d.startswith("answers; 1 replicated tables, max delay") for d in healthy)
    for host in cluster.hosts:  # what was written while each node restarted reached every node
        wait_until(
            f"{host.name} caught up",
            partial(answers, cluster, host, f"SELECT count() FROM {TABLE}", str(inserted)),
        )
    lock_log = cluster.hosts[0].ssh("cat /var/log/adpulse/audit.log").stdout
    assert '"event":"lock"' in lock_log and '"event":"unlock"' in lock_log
    assert cluster.admin_password not in lock_log


FILES = ("config.d/adpulse.xml", "users.d/adpulse-users.xml")
BROKEN = "config.d/adpulse-broken.xml"  # a file the nodes lack: removed again on restore
_STATE = (
    "cd /etc/clickhouse-server; for f in {files}; do if [ -e $f ]; then "
    "echo $f $(sha256sum < $f | cut -d' ' -f1) $(stat -c '%a %U:%G %Y' $f); "
    "else echo $f absent; fi; done"
)


def on_disk(host: Host) -> str:
    """Each config file's sha256, mode, owner and mtime on `host` (or `absent`)."""
    return host.ssh(_STATE.format(files=" ".join((*FILES, BROKEN)))).stdout


def started_at(host: Host) -> str:
    """When the server's process started (systemd's monotonic clock): changes on a restart."""
    show = "systemctl show -p ExecMainStartTimestampMonotonic --value clickhouse-server"
    return host.ssh(show).stdout.strip()


def as_they_are(cluster: ChCluster) -> dict[str, str]:
    """The files the nodes hold now, as a rendered set: whatever the tests before left."""
    return {
        f"{h.name}/{path}": h.ssh(f"cat /etc/clickhouse-server/{path}").stdout
        for h in cluster.hosts
        for path in FILES
    }


def last_apply(host: Host) -> str:
    """The last `config-apply` line of `host`'s audit log (the lock's lines may follow it)."""
    return host.ssh('grep \'"event":"config-apply"\' /var/log/adpulse/audit.log | tail -n 1').stdout


def unstartable(cluster: ChCluster) -> dict[str, str]:
    """What the nodes hold, plus a changed file to put back and a new one 18.16 cannot parse."""
    rendered = as_they_are(cluster)
    for host in cluster.hosts:
        rendered[f"{host.name}/{FILES[0]}"] += "<!-- pushed by the broken-config test -->\n"
        rendered[f"{host.name}/{BROKEN}"] = "<clickhouse><listen_host>::</clickhouse>\n"
    return rendered


@dataclasses.dataclass(frozen=True)
class Failed:
    """A refused apply: the node it failed on, every node's files and start time before it, the
    error, and the steps reported."""

    first: Host
    before: dict[str, str]
    starts: dict[str, str]
    error: ConfigApplyError
    steps: list[Step]


def apply_failing(
    cluster: ChCluster,
    rendered: dict[str, str],
    action: str,
    during: Callable[[Host, Step], None] = lambda _first, _step: None,
) -> Failed:
    """Apply `rendered`, which every node plans to take by `action`, expecting a refusal;
    `during` sees each step."""
    dry = run(cluster, rendered, dry_run=True)
    assert [n.action for n in dry.nodes] == [action] * 3
    first = cluster.host(dry.nodes[0].host)
    before = {h.name: on_disk(h) for h in cluster.hosts}
    starts = {h.name: started_at(h) for h in cluster.hosts}
    steps: list[Step] = []

    def progress(step: Step) -> None:
        steps.append(step)
        during(first, step)

    with pytest.raises(ConfigApplyError) as failed:
        run(cluster, rendered, progress=progress)
    return Failed(first, before, starts, failed.value, steps)


def test_a_config_the_server_cannot_start_with_is_put_back(ch_cluster: ChCluster) -> None:
    cluster = ch_cluster
    failed = apply_failing(cluster, unstartable(cluster), "restart")
    first, before, starts, steps = failed.first, failed.before, failed.starts, failed.steps
    message = str(failed.error)
    assert message.startswith(
        f"{first.name}: the new config failed: it was restarted with the new config, but its "
        "server stopped (clickhouse-server is failed/failed); its journal: "
    )
    assert "clickhouse-server.service" in message and "adpulse-broken.xml" in message
    assert message.endswith(
        "Its previous config was put back and it was restarted with it: it answers again; the "
        "nodes after it are untouched: fix the config and run `adpulse config apply` again"
    )
    assert failed.error.restored is True
    assert [s.step for s in steps] == ["write", "restart", "restarted", "restore", "restored"]
    assert {s.host for s in steps} == {first.name}
    assert cluster.query(first, "SELECT 1") == "1"
    assert started_at(first) != starts[first.name]
    for host in cluster.hosts:  # byte for byte, mode and owner: the failing node's too
        assert on_disk(host) == before[host.name], host.name
        assert host.ssh(f"test -e {PREVIOUS}").returncode == 1
    for host in cluster.hosts:
        if host is not first:
            assert started_at(host) == starts[host.name], f"{host.name} was restarted"
    audit = last_apply(first)
    assert '"outcome":"failed"' in audit and '"restored":true' in audit


def test_a_config_the_server_refuses_to_reload_is_put_back(ch_cluster: ChCluster) -> None:
    cluster = ch_cluster
    rendered = as_they_are(cluster)
    # 18.16 refuses remote_servers' <secret> (20.10+) on SYSTEM RELOAD CONFIG: see ch_cluster.
    secret = '            <secret from_env="CLICKHOUSE_CLUSTER_SECRET"/>\n'
    for host in cluster.hosts:
        key = f"{host.name}/{FILES[0]}"
        rendered[key] = rendered[key].replace(
            "            <shard>", secret + "            <shard>", 1
        )
    failed = apply_failing(cluster, rendered, "reload")
    first, before, starts, steps = failed.first, failed.before, failed.starts, failed.steps
    message = str(failed.error)
    assert message.startswith(f"{first.name}: SYSTEM RELOAD CONFIG refused the new config (")
    assert "Unknown element in config: secret" in message
    assert message.endswith(
        "its previous config files were put back and reloaded: it runs its previous config, as "
        "before; the nodes after it are untouched: fix the config and run `adpulse config "
        "apply` again"
    )
    assert failed.error.restored is True
    assert [(s.host, s.step) for s in steps] == [(first.name, "write")]
    for host in cluster.hosts:  # nothing restarted, every file as it was
        assert started_at(host) == starts[host.name], f"{host.name} was restarted"
        assert on_disk(host) == before[host.name], host.name
    audit = last_apply(first)
    assert '"outcome":"failed"' in audit and '"restored":true' in audit
    assert '"action":"reload"' in audit


def test_when_putting_back_fails_the_error_says_how_by_hand(ch_cluster: ChCluster) -> None:
    cluster = ch_cluster

    def lose_the_copies(first: Host, step: Step) -> None:  # moved away, to put back by hand
        if step.step == "restarted":
            assert first.ssh(f"mv {PREVIOUS} /root/kept").returncode == 0

    failed = apply_failing(cluster, unstartable(cluster), "restart", during=lose_the_copies)
    first, before, starts = failed.first, failed.before, failed.starts
    message = str(failed.error)
    assert failed.error.restored is False
    assert message.startswith(f"{first.name}: the new config failed: it was restarted")
    assert ". Putting its previous config back failed too (" in message
    assert "cannot stat" in message
    assert message.endswith(
        f": {first.name} may be DOWN with the new config; on {first.name}, as root: "
        f"`cp -p {PREVIOUS}/config.d/adpulse.xml /etc/clickhouse-server/config.d/adpulse.xml`, "
        f"`rm -f /etc/clickhouse-server/{BROKEN}`, then `systemctl restart clickhouse-server`; the "
        "nodes after it are untouched"
    )
    assert '"restored":false' in last_apply(first)
    assert first.ssh(f"mv /root/kept {PREVIOUS}").returncode == 0
    for command in re.findall(r"`((?:cp|rm|systemctl) [^`]*)`", message):  # as it says
        assert first.ssh(command).returncode == 0, command
    wait_until(f"{first.name} answering", partial(answers, cluster, first, "SELECT 1", "1"))
    for host in cluster.hosts:
        assert on_disk(host) == before[host.name], host.name
        if host is not first:
            assert started_at(host) == starts[host.name], f"{host.name} was restarted"
