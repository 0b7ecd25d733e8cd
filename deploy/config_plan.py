"""What `adpulse config apply` changes on each ClickHouse node, how the server takes it, and
the rules of the rolling restart. Pure: rendered files and what the nodes hold in, a plan out.

A file whose sha256 differs from the node's is compared element by element (the top-level
elements of its XML, comments ignored). The server takes a change live, on `SYSTEM RELOAD
CONFIG`, only if every changed element is one ClickHouse reloads; anything else, or anything
unknown, needs a restart of that node. What reloads live comes from ClickHouse itself:

- users.d (users, profiles, quotas) is reloaded from its files by the users reloader, which
  `SYSTEM RELOAD CONFIG` runs too (ClickHouse PR #48383, "Clarify SYSTEM RELOAD CONFIG and
  USERS"); the Configuration Files page: the server "reloads the settings for users and
  clusters on the fly" (clickhouse.com/docs/operations/configuration-files).
- config.d: the main config reloader's callback (programs/server/Server.cpp,
  `main_config_reloader`) applies logger levels, `remote_servers` (setClustersConfig),
  `zookeeper` (reloadZooKeeperIfChanged), dictionaries, drop-size limits, concurrency limits
  and caches. Ports and listen hosts, the interserver address, data paths, the TLS context
  (only the certificate *files* are re-read), the DDL worker's and KeeperMap's paths and the
  embedded Keeper's ports, id and storage are read when the server starts. `macros` is
  reloaded too, but replicated tables expand {shard}/{replica} when they start, so a changed
  macro takes a restart to mean the same thing everywhere.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from adpulse.topology import Topology

Action = Literal["none", "reload", "restart"]
MAX_DELAY_S = 10.0  # a restarted replica is caught up when every table is less behind than this
USERS_DIR = "users.d/"
CONFIG_DIR = "config.d/"
LIVE_ELEMENTS = frozenset(
    {
        "remote_servers",
        "zookeeper",
        "auxiliary_zookeepers",
        "logger",
        "dictionaries_config",
        "user_defined_executable_functions_config",
        "max_table_size_to_drop",
        "max_partition_size_to_drop",
        "max_concurrent_queries",
        "max_concurrent_insert_queries",
        "max_concurrent_select_queries",
        "max_server_memory_usage",
        "max_server_memory_usage_to_ram_ratio",
        "remote_url_allow_hosts",
        "named_collections",
        "query_masking_rules",
    }
)
UNREADABLE = "(not XML)"  # what a node's file that does not parse counts as: restart


@dataclass(frozen=True)
class FileChange:
    """One file to write: `path` is relative to /etc/clickhouse-server."""

    path: str
    sha256_before: str | None  # None: the node has no such file
    sha256_after: str
    elements: tuple[str, ...]  # top-level elements that differ (added, removed or changed)
    restart_for: tuple[str, ...]  # those the server reads only when it starts

    @property
    def action(self) -> Action:
        return "restart" if self.restart_for else "reload"


@dataclass(frozen=True)
class NodePlan:
    host: str
    keeper: bool  # runs a Keeper voter: restarting the server takes that voter down
    changes: tuple[FileChange, ...]

    @property
    def action(self) -> Action:
        if not self.changes:
            return "none"
        return "restart" if any(c.action == "restart" for c in self.changes) else "reload"

    def describe(self) -> str:
        """`ch-2 (Keeper): restart for listen_host; config.d/adpulse.xml, users.d/...`."""
        who = f"{self.host} (Keeper)" if self.keeper else self.host
        if not self.changes:
            return f"{who}: unchanged"
        files = ", ".join(c.path for c in self.changes)
        if self.action == "restart":
            why = sorted({e for c in self.changes for e in c.restart_for})
            return f"{who}: restart for {', '.join(why)}; writes {files}"
        return f"{who}: SYSTEM RELOAD CONFIG; writes {files}"


@dataclass(frozen=True)
class ApplyPlan:
    """Every node, in the order `config apply` goes through them."""

    nodes: tuple[NodePlan, ...]

    @property
    def changed(self) -> tuple[NodePlan, ...]:
        return tuple(n for n in self.nodes if n.action != "none")

    def describe(self) -> list[str]:
        return [node.describe() for node in self.nodes]

    def as_json(self) -> list[dict[str, Any]]:
        return [
            {
                "host": n.host,
                "keeper": n.keeper,
                "action": n.action,
                "files": [
                    {
                        "path": c.path,
                        "sha256_before": c.sha256_before,
                        "sha256_after": c.sha256_after,
                        "elements": list(c.elements),
                        "restart_for": list(c.restart_for),
                    }
                    for c in n.changes
                ],
            }
            for n in self.nodes
        ]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def node_files(rendered: Mapping[str, str], host: str) -> dict[str, str]:
    """`host`'s part of `render_node_configs`: `config.d/adpulse.xml` -> text, and so on."""
    prefix = f"{host}/"
    return {k.removeprefix(prefix): v for k, v in rendered.items() if k.startswith(prefix)}


def _elements(text: str) -> dict[str, list[str]] | None:
    """Top-level elements by tag, each in a canonical form (no comments, no blank text);
    None when `text` is not XML."""
    try:
        # Our own rendered files, or what this tool wrote on our own nodes; expat >= 2.4.1
        # (CPython's) refuses the entity-expansion attacks this rule is about.
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError:
        return None
    for node in root.iter():
        node.text = (node.text or "").strip() or None
        node.tail = None
    found: dict[str, list[str]] = {}
    for child in root:
        if isinstance(child.tag, str):
            found.setdefault(child.tag, []).append(ET.tostring(child, encoding="unicode"))
    return found


def changed_elements(before: str | None, after: str) -> tuple[str, ...]:
    """The top-level elements in which `after` differs from `before` (all of them for a new
    file); (UNREADABLE,) when either is not XML."""
    new = _elements(after)
    old = {} if before is None else _elements(before)
    if new is None or old is None:
        return (UNREADABLE,)
    return tuple(sorted(tag for tag in old.keys() | new.keys() if old.get(tag) != new.get(tag)))


def needs_restart(path: str, elements: Iterable[str]) -> tuple[str, ...]:
    """Which of `elements` of the file at `path` the server takes only at start."""
    if path.startswith(USERS_DIR):
        return tuple(e for e in elements if e == UNREADABLE)
    if path.startswith(CONFIG_DIR):
        return tuple(e for e in elements if e not in LIVE_ELEMENTS)
    return tuple(elements) or (path,)  # a file elsewhere: config.xml itself, say


def plan_node(
    host: str, keeper: bool, desired: Mapping[str, str], current: Mapping[str, str | None]
) -> NodePlan:
    """The changes that bring `host` from `current` (path -> text, None if absent) to
    `desired`; a file equal by sha256 is left alone."""
    changes = []
    for path, text in sorted(desired.items()):
        old = current.get(path)
        before = None if old is None else sha256(old)
        after = sha256(text)
        if before == after:
            continue
        elements = changed_elements(old, text)
        changes.append(FileChange(path, before, after, elements, needs_restart(path, elements)))
    return NodePlan(host, keeper, tuple(changes))


def make_plan(
    topology: Topology,
    rendered: Mapping[str, str],
    current: Mapping[str, Mapping[str, str | None]],
    keeper_leader: str | None = None,
) -> ApplyPlan:
    """Every node of `topology`: non-Keeper nodes first, then the Keeper voters, the current
    leader last (one election at the end instead of one per restart); topology order within."""
    plans = [
        plan_node(
            node.host,
            node.keeper_id is not None,
            node_files(rendered, node.host),
            current.get(node.host, {}),
        )
        for node in topology.nodes
    ]
    rank = {p.host: (p.keeper, p.host == keeper_leader) for p in plans}
    return ApplyPlan(tuple(sorted(plans, key=lambda p: rank[p.host])))


def restart_blocker(
    node: NodePlan,
    keeper_hosts: Sequence[str],
    keeper_states: Mapping[str, str | None],
    peers_down: Sequence[str],
    port: int,
) -> str | None:
    """Why `node` must not restart now, or None. `keeper_states` maps each Keeper host to its
    `mntr` state (leader, follower, standalone) or None when it did not answer; `peers_down`
    lists the other replicas of its shard that do not answer.

    A Keeper node restarts only while every other voter is healthy: never a second voter down.
    Any node restarts only while the voters keep a quorum (else its replicated tables come up
    read-only) and while every other replica of its shard answers (one replica at a time)."""
    fix = f"bring it back, then run `adpulse config apply` again ({node.host} is untouched)"
    if peers_down:
        return (
            f"refusing to restart {node.host}: {', '.join(peers_down)} (another replica of its "
            f"shard) does not answer, and one replica is down at a time; {fix}"
        )
    down = [h for h in keeper_hosts if h != node.host and not keeper_healthy(keeper_states.get(h))]
    if node.keeper and down:
        return (
            f"refusing to restart {node.host}, a Keeper node: the Keeper on {', '.join(down)} "
            f"does not answer `mntr` on port {port} as leader or follower, and restarting "
            f"{node.host} would take a second Keeper node down; {fix}"
        )
    up = [h for h in keeper_hosts if keeper_healthy(keeper_states.get(h))]
    if keeper_hosts and len(up) <= len(keeper_hosts) // 2:
        return (
            f"refusing to restart {node.host}: only {len(up)} of {len(keeper_hosts)} Keeper "
            f"nodes answer (no quorum), so its replicated tables would start read-only; "
            f"bring Keeper back first ({node.host} is untouched)"
        )
    return None


def keeper_healthy(state: str | None) -> bool:
    return state in ("leader", "follower", "standalone")


def mntr_state(text: str) -> str | None:
    """`zk_server_state` from a Keeper's (or ZooKeeper's) `mntr` answer, None without one."""
    for line in text.splitlines():
        key, _, value = line.partition("\t")
        if key.strip() == "zk_server_state":
            return value.strip() or None
    return None


@dataclass(frozen=True)
class Replica:
    """One row of `system.replicas` on a node."""

    table: str  # database.table
    absolute_delay: float
    is_readonly: bool


def lag_verdict(
    replicas: Sequence[Replica], expected_tables: int, max_delay: float = MAX_DELAY_S
) -> str | None:
    """Why the node's replicas are not caught up yet, or None when they are: every table it
    had before the restart is back, none is read-only, each is under `max_delay` s behind."""
    if len(replicas) < expected_tables:
        return f"{len(replicas)} of its {expected_tables} replicated tables are loaded"
    readonly = [r.table for r in replicas if r.is_readonly]
    if readonly:
        return f"read-only (no Keeper session yet): {', '.join(readonly)}"
    behind = sorted(
        (r for r in replicas if r.absolute_delay >= max_delay), key=lambda r: -r.absolute_delay
    )
    if behind:
        tables = ", ".join(f"{r.table} {r.absolute_delay:g} s" for r in behind)
        return f"{behind[0].absolute_delay:g} s behind (max {max_delay:g} s): {tables}"
    return None
