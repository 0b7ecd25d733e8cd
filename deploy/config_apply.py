"""`adpulse config apply`: the rendered ClickHouse configs onto the stack's nodes, one at a time.

Under the stack's deploy lock (deploy/audit.py `locked`), node by node in the plan's order
(deploy/config_plan.py): write the files that differ, atomically; then `SYSTEM RELOAD CONFIG`
when the server takes every change live, or else restart `clickhouse-server` and wait until
it answers, has every replicated table back, none read-only and none 10 s or more behind
(`system.replicas.absolute_delay`), and, on a Keeper node, its Keeper answers again. A restart
waits its turn: no other replica of the shard down, and on a Keeper node every other voter up.
The first failure stops the run; the nodes after it are untouched. Each node's audit log gets
a line per node. Queries run through `clickhouse-client` on the node as the admin user, whose
password reaches it in a root-only 0600 file (sent on stdin), never in a command line.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from adpulse.clickhouse.config import ConfigOptions, render_node_configs
from adpulse.clickhouse.roles import ROLE_USERS
from adpulse.errors import AdpulseError, ConfigError
from adpulse.topology import Topology, load_topology
from deploy import audit
from deploy.config_node import CLIENT_CONFIG, CONFIG_ROOT, SERVICE, Node
from deploy.config_plan import (
    ApplyPlan,
    NodePlan,
    keeper_healthy,
    lag_verdict,
    make_plan,
    node_files,
    restart_blocker,
)
from deploy.inventory import InventoryError, StackInventory
from deploy.lock import lock_target
from deploy.ssh import Connection, RemoteError, Target, connect

ADMIN_SECRET = "clickhouse-admin-password"  # noqa: S105 (a secret's name: stack_secrets.py)


class ConfigApplyError(AdpulseError):
    """A node could not take its config, or must not restart now; nodes after it untouched."""


@dataclass(frozen=True)
class Login:
    user: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Policy:
    max_delay_s: float = 10.0
    timeout_s: float = 600.0  # per node: the restart and the catching up
    poll_s: float = 1.0


@dataclass(frozen=True)
class Step:
    """What happens, as it happens: `write`, `reloaded`, `restart`, `restarted`, `healthy`."""

    host: str
    step: str
    detail: str = ""


@dataclass(frozen=True)
class Ssh:
    known_hosts: Path
    key_file: Path | None = None


def _quiet(step: Step) -> None:
    pass


@contextmanager
def _client_login(nodes: Mapping[str, Node], login: Login) -> Iterator[None]:
    """The admin login in a 0600 client config on every node for the block, removed after."""
    text = f"<config><user>{escape(login.user)}</user><password>{escape(login.password)}"
    data = (text + "</password></config>\n").encode()
    try:
        for node in nodes.values():
            node.conn.put(str(CLIENT_CONFIG), data, mode=0o600)
        yield
    finally:
        for node in nodes.values():
            node.conn.run(["rm", "-f", str(CLIENT_CONFIG)], check=False)


def read_plan(
    topology: Topology, rendered: Mapping[str, str], nodes: Mapping[str, Node]
) -> ApplyPlan:
    """The plan against what the nodes hold now, the Keeper leader (if any answers) last."""
    current = {h: n.read(sorted(node_files(rendered, h))) for h, n in nodes.items()}
    states = {h: nodes[h].keeper_state(topology.ports.keeper) for h in topology.keeper}
    leader = next((h for h, s in states.items() if s == "leader"), None)
    return make_plan(topology, rendered, current, leader)


def apply_plan(
    plan: ApplyPlan,
    topology: Topology,
    rendered: Mapping[str, str],
    nodes: Mapping[str, Node],
    stack: str,
    policy: Policy = Policy(),
    progress: Callable[[Step], None] = _quiet,
    secrets: tuple[str, ...] = (),
) -> None:
    """Apply `plan` node by node; raises ConfigApplyError at the first node that fails."""
    for node_plan in plan.changed:
        node = nodes[node_plan.host]
        event: dict[str, Any] = {"event": "config-apply", "stack": stack, "host": node.host}
        event |= {"action": node_plan.action, "files": [c.path for c in node_plan.changes]}
        event["restart_for"] = sorted({e for c in node_plan.changes for e in c.restart_for})
        try:
            _apply_node(node_plan, topology, rendered, nodes, policy, progress)
        except AdpulseError as exc:
            try:
                audit.record(node.conn, {**event, "outcome": "failed", "error": str(exc)}, secrets)
            except AdpulseError as also:
                exc.add_note(f"and its audit log was not written: {also}")
            raise
        audit.record(node.conn, {**event, "outcome": "ok"}, secrets)


def _apply_node(
    plan: NodePlan,
    topology: Topology,
    rendered: Mapping[str, str],
    nodes: Mapping[str, Node],
    policy: Policy,
    progress: Callable[[Step], None],
) -> None:
    node = nodes[plan.host]
    expected = 0
    if plan.action == "restart":
        shard = next(s for s in topology.shards if plan.host in s)
        down = [h for h in shard if h != plan.host and not nodes[h].answers()]
        states = {h: nodes[h].keeper_state(topology.ports.keeper) for h in topology.keeper}
        blocker = restart_blocker(plan, topology.keeper, states, down, topology.ports.keeper)
        if blocker:
            raise ConfigApplyError(blocker)
        expected = len(node.replicas()) if node.answers() else 0
    files = node_files(rendered, plan.host)
    for change in plan.changes:
        node.conn.put(str(CONFIG_ROOT / change.path), files[change.path].encode(), mode=0o644)
    progress(Step(plan.host, "write", ", ".join(c.path for c in plan.changes)))
    if plan.action == "reload":
        try:
            node.query("SYSTEM RELOAD CONFIG")
        except RemoteError as exc:
            raise ConfigApplyError(
                f"{plan.host}: SYSTEM RELOAD CONFIG failed, the new files are in place but not "
                f"in effect: {exc}; fix the config and run `adpulse config apply` again"
            ) from None
        progress(Step(plan.host, "reloaded"))
        return
    progress(Step(plan.host, "restart"))
    try:
        node.conn.run(["systemctl", "restart", SERVICE], timeout=policy.timeout_s)
    except RemoteError as exc:
        raise ConfigApplyError(
            f"{plan.host}: `systemctl restart {SERVICE}` failed ({exc}); its journal: "
            f"{node.journal()}"
        ) from None
    progress(Step(plan.host, "restarted"))
    progress(Step(plan.host, "healthy", _wait_caught_up(node, plan, expected, topology, policy)))


def _wait_caught_up(
    node: Node, plan: NodePlan, expected: int, topology: Topology, policy: Policy
) -> str:
    """Poll until the restarted node is caught up (and its Keeper answers, on a Keeper node);
    returns what it last read. ConfigApplyError naming the node and its lag past the deadline."""
    deadline = time.monotonic() + policy.timeout_s
    last = "it does not answer SELECT 1"
    while time.monotonic() < deadline:
        if node.answers():
            try:
                replicas = node.replicas()
            except RemoteError as exc:
                last = f"system.replicas failed: {exc}"
            else:
                verdict = lag_verdict(replicas, expected, policy.max_delay_s)
                state = node.keeper_state(topology.ports.keeper) if plan.keeper else "leader"
                if verdict is None and keeper_healthy(state):
                    worst = max((r.absolute_delay for r in replicas), default=0.0)
                    return f"answers; {len(replicas)} replicated tables, max delay {worst:g} s"
                last = verdict or f"its Keeper answers mntr with {state or 'nothing'}"
        time.sleep(policy.poll_s)
    hint = "" if "behind" not in last else "; see system.replication_queue there"
    raise ConfigApplyError(
        f"{node.host}: restarted with the new config but not healthy after "
        f"{policy.timeout_s:g} s: {last}{hint}; the nodes after it are untouched, run "
        f"`adpulse config apply` again once it has caught up. Journal: {node.journal()}"
    )


def rendered_version(rendered: Mapping[str, str]) -> str:
    """`config-<12 hex>`: names this set of rendered files in the lock and the audit log."""
    digest = hashlib.sha256()
    for path in sorted(rendered):
        digest.update(f"{path}\0{rendered[path]}\0".encode())
    return f"config-{digest.hexdigest()[:12]}"


def apply(
    stack: str,
    topology: Topology,
    rendered: Mapping[str, str],
    targets: Mapping[str, Target],
    lock_host: Target,
    ssh: Ssh,
    login: Login | None,
    *,
    dry_run: bool = False,
    policy: Policy = Policy(),
    progress: Callable[[Step], None] = _quiet,
    command: str = "adpulse config apply",
) -> ApplyPlan:
    """Connect to every node, plan, and (unless `dry_run`) apply under the stack's lock; the
    plan is returned either way. `login` (the admin user) is needed unless `dry_run`."""
    missing = [h for h in topology.hosts if h not in targets]
    if missing:
        raise ConfigApplyError(
            f"stack {stack}: no host named {missing[0]} among its ClickHouse hosts "
            f"({', '.join(sorted(targets))}); is the topology the stack's?"
        )
    with ExitStack() as stack_of:
        nodes = {
            h: Node(h, stack_of.enter_context(_connect(targets[h], stack, ssh)), topology.ports.tcp)
            for h in topology.hosts
        }
        if dry_run:
            return read_plan(topology, rendered, nodes)
        if login is None:
            raise ConfigApplyError("config apply needs the admin login; only --dry-run does not")
        secrets = (login.password,)
        lock_conn = stack_of.enter_context(_connect(lock_host, stack, ssh))
        version = rendered_version(rendered)
        owner = audit.default_owner()
        with audit.locked(lock_conn, stack, owner, version, command, secrets):
            plan = read_plan(topology, rendered, nodes)
            if plan.changed:
                with _client_login(nodes, login):
                    apply_plan(plan, topology, rendered, nodes, stack, policy, progress, secrets)
        return plan


def _connect(target: Target, stack: str, ssh: Ssh) -> AbstractContextManager[Connection]:
    return connect(target, stack, ssh.known_hosts, ssh.key_file)


def stack_topology(inv: StackInventory) -> Topology:
    """The cluster as the stack exported it (`clickhouse_topology_toml`), every host of it one
    of the stack's ClickHouse hosts."""
    with tempfile.TemporaryDirectory(prefix="adpulse-topology-") as folder:
        path = Path(folder) / "topology.toml"
        path.write_text(inv.clickhouse_topology_toml, encoding="utf-8")
        try:
            topology = load_topology(str(path))
        except ConfigError as exc:
            raise InventoryError(
                f"stack {inv.stack}: output `clickhouse_topology_toml` is not a topology "
                f"({str(exc).replace(str(path), 'it')}); run `pulumi up` with this version"
            ) from None
    names = {h.name for h in inv.clickhouse_hosts}
    stray = [h for h in topology.hosts if h not in names]
    if stray:
        raise InventoryError(
            f"stack {inv.stack}: its topology names {stray[0]}, which is not among its "
            f"ClickHouse hosts ({', '.join(sorted(names))}); run `pulumi up` to reconcile"
        )
    return topology


def apply_stack(
    inv: StackInventory,
    ssh_user: str,
    ssh: Ssh,
    *,
    dry_run: bool = False,
    policy: Policy = Policy(),
    progress: Callable[[Step], None] = _quiet,
) -> ApplyPlan:
    """`adpulse config apply --stack`: the files `render_node_configs` gives for the stack's
    topology (the same the nodes' user data wrote) onto its ClickHouse hosts; the admin login
    from `inv.secrets` (`deploy.stack_secrets.with_secrets`), not needed for `dry_run`."""
    topology = stack_topology(inv)
    rendered = render_node_configs(topology, ConfigOptions())
    targets = {h.name: Target(h.name, h.private_ip, user=ssh_user) for h in inv.clickhouse_hosts}
    password = inv.secrets.get(ADMIN_SECRET)
    if not dry_run and not password:
        raise InventoryError(
            f"stack {inv.stack}: the secret {ADMIN_SECRET} was not read; it is needed to log in "
            "to ClickHouse (only --dry-run goes without)"
        )
    login = Login(ROLE_USERS["admin"], password) if password else None
    command = f"adpulse config apply --stack {inv.stack}"
    return apply(
        inv.stack,
        topology,
        rendered,
        targets,
        lock_target(inv, ssh_user),
        ssh,
        login,
        dry_run=dry_run,
        policy=policy,
        progress=progress,
        command=command,
    )
