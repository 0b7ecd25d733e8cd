"""`adpulse config apply`: the rendered ClickHouse configs onto the stack's nodes, one at a time.

Under the stack's deploy lock (deploy/audit.py `locked`), node by node in the plan's order
(deploy/config_plan.py): write the files that differ, atomically; then `SYSTEM RELOAD CONFIG`
when the server takes every change live, or else restart `clickhouse-server` and wait until
it answers, has every replicated table back, none read-only and none 10 s or more behind
(`system.replicas.absolute_delay`), and, on a Keeper node, its Keeper answers again. A restart
waits its turn: no other replica of the shard down, and on a Keeper node every other voter up.

A config the server refuses does not stay on the node: each file is copied aside before it is
written (deploy/config_node.py `keep`), and put back when the write or `SYSTEM RELOAD CONFIG`
fails (the server still runs the previous config; it is reloaded to be sure), or when the
restarted server does not start or never answers SELECT 1, after which it is restarted again
and must answer. A node that answers but whose replicas lag keeps the new config: that is
replication, not the config. The first failure stops the run; the nodes after it are
untouched. Each node's audit log gets a line per node, with `restored` after a failure that
put (or failed to put) the previous config back. Queries run through `clickhouse-client` on
the node as the admin user, whose password reaches it in a root-only 0600 file (sent on
stdin), never in a command line.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
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
from deploy.config_node import CLIENT_CONFIG, CONFIG_ROOT, PREVIOUS, SERVICE, Node
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
    """A node could not take its config, or must not restart now; nodes after it untouched.

    `restored` is None when nothing was put back (nothing was written, or the node took the
    new config but is not caught up), True when the node has its previous config again (and
    answers, after a restart), False when putting it back failed and it needs a hand."""

    def __init__(self, message: str, *, restored: bool | None = None) -> None:
        super().__init__(message)
        self.restored = restored


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
    """What happens, as it happens: `write`, `reloaded`, `restart`, `restarted`, `healthy`;
    after a restart with the new config failed, `restore` and (once it answers) `restored`."""

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
            failed = {**event, "outcome": "failed", "error": str(exc)}
            if isinstance(exc, ConfigApplyError) and exc.restored is not None:
                failed["restored"] = exc.restored
            try:
                audit.record(node.conn, failed, secrets)
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
    paths = [c.path for c in plan.changes]
    try:
        kept = node.keep(paths)
    except AdpulseError as exc:
        raise ConfigApplyError(
            f"{plan.host}: could not keep a copy of its current config in {PREVIOUS} before "
            f"writing the new one ({exc}); nothing was written there, and the nodes after it "
            "are untouched: make room or fix the host, then run `adpulse config apply` again"
        ) from None
    try:
        for path in paths:
            node.conn.put(str(CONFIG_ROOT / path), files[path].encode(), mode=0o644)
    except AdpulseError as exc:
        raise _put_back(node, paths, kept, f"writing its new config failed ({exc})") from None
    progress(Step(plan.host, "write", ", ".join(paths)))
    if plan.action == "reload":
        try:
            node.query("SYSTEM RELOAD CONFIG")
        except RemoteError as exc:
            raise _put_back(
                node, paths, kept, f"SYSTEM RELOAD CONFIG refused the new config ({exc})"
            ) from None
        progress(Step(plan.host, "reloaded"))
        node.forget()
        return
    progress(Step(plan.host, "restart"))
    try:
        node.restart(policy.timeout_s)
    except RemoteError as exc:
        failed: str | None = f"`systemctl restart {SERVICE}` failed ({exc})"
    else:
        progress(Step(plan.host, "restarted"))
        deadline = time.monotonic() + policy.timeout_s
        failed = _answer_within(node, deadline, policy)
        if failed is None:
            detail = _wait_caught_up(node, plan, expected, topology, policy, deadline)
            progress(Step(plan.host, "healthy", detail))
            node.forget()
            return
        failed = f"it was restarted with the new config, but {failed}"
    why = f"{failed}; its journal: {_journal(node)}"
    raise _restart_previous(node, paths, kept, why, policy, progress)


def _answer_within(node: Node, deadline: float, policy: Policy) -> str | None:
    """Poll until `node` answers SELECT 1; None when it does, else why not: its server's unit
    stopped (no use waiting on) or `deadline` passed."""
    while time.monotonic() < deadline:
        if node.answers():
            return None
        gone = node.stopped()
        if gone:
            return f"its server stopped ({SERVICE} is {gone})"
        time.sleep(policy.poll_s)
    return f"it did not answer SELECT 1 within {policy.timeout_s:g} s"


def _wait_caught_up(
    node: Node,
    plan: NodePlan,
    expected: int,
    topology: Topology,
    policy: Policy,
    deadline: float,
) -> str:
    """Poll until the restarted node, which has answered, is caught up (and its Keeper answers,
    on a Keeper node); returns what it last read. ConfigApplyError naming the node and its lag
    past `deadline`: its new config is in effect, so it stays."""
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


def _journal(node: Node) -> str:
    """`node.journal()`, or why it could not be read: a failure is being reported already."""
    try:
        return node.journal()
    except AdpulseError as exc:
        return f"(not read: {exc})"


def _by_hand(node: Node, paths: Sequence[str], kept: frozenset[str]) -> str:
    """What to do on `node` to put its previous config back without this tool."""
    back = [f"`cp -p {PREVIOUS / p} {CONFIG_ROOT / p}`" for p in paths if p in kept]
    gone = [f"`rm -f {CONFIG_ROOT / p}`" for p in paths if p not in kept]
    return f"on {node.host}, as root: {', '.join(back + gone)}"


def _put_back(node: Node, paths: Sequence[str], kept: frozenset[str], why: str) -> ConfigApplyError:
    """The previous files back after the new ones failed short of a restart: the server still
    runs its previous config, so the files are all that must change (and a reload re-reads
    them, in case it took in part of the new ones). The error to raise, `restored` set."""
    head = f"{node.host}: {why}"
    untouched = "the nodes after it are untouched"
    try:
        node.restore(paths, kept)
    except AdpulseError as exc:
        return ConfigApplyError(
            f"{head}; putting its previous config back failed too ({exc}), so the new files "
            f"are still there and its next restart would load them: {_by_hand(node, paths, kept)}, "
            f"then run `SYSTEM RELOAD CONFIG` there; {untouched}",
            restored=False,
        )
    try:
        node.query("SYSTEM RELOAD CONFIG")
    except AdpulseError as exc:
        reloaded = f", but reloading them failed ({exc}): see the server's log there"
    else:
        reloaded = " and reloaded: it runs its previous config, as before"
    node.forget()
    return ConfigApplyError(
        f"{head}; its previous config files were put back{reloaded}; {untouched}: fix the "
        "config and run `adpulse config apply` again",
        restored=True,
    )


def _restart_previous(
    node: Node,
    paths: Sequence[str],
    kept: frozenset[str],
    why: str,
    policy: Policy,
    progress: Callable[[Step], None],
) -> ConfigApplyError:
    """The previous files back after a restart with the new ones failed, and the server
    restarted with them until it answers again. The error to raise, `restored` set."""
    head = f"{node.host}: the new config failed: {why.rstrip('.')}"
    untouched = "the nodes after it are untouched"
    restart = f"`systemctl restart {SERVICE}`"
    progress(Step(node.host, "restore", ", ".join(paths)))
    try:
        node.restore(paths, kept)
    except AdpulseError as exc:
        return ConfigApplyError(
            f"{head}. Putting its previous config back failed too ({exc}): {node.host} may be "
            f"DOWN with the new config; {_by_hand(node, paths, kept)}, then {restart}; {untouched}",
            restored=False,
        )
    try:
        node.restart(policy.timeout_s)
    except AdpulseError as exc:
        not_serving: str | None = f"{restart} failed ({exc})"
    else:
        not_serving = _answer_within(node, time.monotonic() + policy.timeout_s, policy)
    if not_serving:
        return ConfigApplyError(
            f"{head}. Its previous config files were put back, but with them too {not_serving}: "
            f"{node.host} is DOWN; its journal now: {_journal(node)}; find why there "
            f"(`journalctl -u {SERVICE}`), then {restart}; {untouched}",
            restored=False,
        )
    progress(Step(node.host, "restored", "answers SELECT 1 with its previous config"))
    node.forget()
    return ConfigApplyError(
        f"{head}. Its previous config was put back and it was restarted with it: it answers "
        f"again; {untouched}: fix the config and run `adpulse config apply` again",
        restored=True,
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
