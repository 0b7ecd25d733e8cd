"""deploy.config_plan: which rendered files a node lacks, reload or restart for each change,
the order nodes go in, and the rules a restart waits for (Keeper voters, shard peers, lag); and
with scripted nodes, which failures put a node's previous config back (the real thing:
test_config_apply_cluster.py)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import pytest
from typer.testing import CliRunner

from adpulse.clickhouse.config import ConfigOptions, render_node_configs
from adpulse.topology import Topology, three_replicas
from cli import app
from deploy.config_apply import (
    ConfigApplyError,
    Policy,
    apply_plan,
    rendered_version,
    stack_topology,
)
from deploy.config_node import Node
from deploy.config_plan import (
    UNREADABLE,
    ApplyPlan,
    NodePlan,
    Replica,
    lag_verdict,
    make_plan,
    mntr_state,
    node_files,
    restart_blocker,
    sha256,
)
from deploy.inventory import InventoryError, from_outputs
from deploy.ssh import Connection, RemoteError, Result
from deploy.stack_facts import STACK_SECRETS

FIXTURES = Path(__file__).parent / "fixtures"
CLUSTER = three_replicas()
CONFIG = "config.d/adpulse.xml"
USERS = "users.d/adpulse-users.xml"
KEEPER = ("ch-1", "ch-2", "ch-3")
# ClickHouse Keeper's `mntr` answer, as 25.x prints it (trimmed).
MNTR = (
    "zk_version\tv25.8.8.26-lts\nzk_avg_latency\t0\nzk_server_state\tfollower\nzk_znode_count\t42\n"
)


def on_nodes(
    rendered: dict[str, str], topology: Topology = CLUSTER
) -> dict[str, dict[str, str | None]]:
    """What each node holds when it has exactly `rendered`."""
    return {h: dict[str, str | None](node_files(rendered, h).items()) for h in topology.hosts}


def test_nodes_holding_the_rendered_files_need_nothing() -> None:
    rendered = render_node_configs(CLUSTER)
    plan = make_plan(CLUSTER, rendered, on_nodes(rendered))
    assert [n.action for n in plan.nodes] == ["none", "none", "none"]
    assert plan.changed == ()
    assert plan.describe() == [f"{h} (Keeper): unchanged" for h in KEEPER]


def test_a_users_change_is_reloaded_live() -> None:
    old = render_node_configs(CLUSTER)
    new = render_node_configs(CLUSTER, ConfigOptions(api_max_execution_time=20))
    plan = make_plan(CLUSTER, new, on_nodes(old))
    for node in plan.nodes:
        [change] = node.changes
        assert (change.path, change.elements, change.action) == (USERS, ("profiles",), "reload")
        assert change.sha256_before == sha256(old[f"{node.host}/{USERS}"])
        assert change.sha256_after == sha256(new[f"{node.host}/{USERS}"])
        assert node.action == "reload"
    assert plan.describe()[0] == f"ch-1 (Keeper): SYSTEM RELOAD CONFIG; writes {USERS}"


def test_networks_change_users_only_and_reloads() -> None:
    old = render_node_configs(CLUSTER)
    new = render_node_configs(CLUSTER, ConfigOptions(networks=("10.1.0.0/16", "127.0.0.1")))
    [change] = make_plan(CLUSTER, new, on_nodes(old)).nodes[0].changes
    assert (change.path, change.elements, change.action) == (USERS, ("users",), "reload")


def test_a_listen_host_change_needs_a_restart() -> None:
    old = render_node_configs(CLUSTER)
    new = render_node_configs(CLUSTER, ConfigOptions(listen_host="::"))
    node = make_plan(CLUSTER, new, on_nodes(old)).nodes[0]
    [change] = node.changes
    assert (change.path, change.restart_for, node.action) == (CONFIG, ("listen_host",), "restart")
    assert node.describe() == f"ch-1 (Keeper): restart for listen_host; writes {CONFIG}"


def test_port_changes_restart_and_name_every_element_they_touch() -> None:
    old = render_node_configs(CLUSTER)
    moved = dataclasses.replace(
        CLUSTER, ports=dataclasses.replace(CLUSTER.ports, interserver_http=9010, keeper=9182)
    )
    node = make_plan(moved, render_node_configs(moved), on_nodes(old)).nodes[0]
    [change] = node.changes
    # The client-facing Keeper port is in <zookeeper> (live) and <keeper_server> (start only).
    assert change.elements == ("interserver_http_port", "keeper_server", "zookeeper")
    assert change.restart_for == ("interserver_http_port", "keeper_server")


def test_a_cluster_definition_change_alone_is_reloaded() -> None:
    rendered = render_node_configs(CLUSTER)
    current = on_nodes(rendered)
    for host in KEEPER:
        text = current[host][CONFIG]
        assert text is not None
        current[host][CONFIG] = text.replace(
            "<internal_replication>true", "<internal_replication>false", 1
        )
    [change] = make_plan(CLUSTER, rendered, current).nodes[0].changes
    assert (change.elements, change.action) == (("remote_servers",), "reload")


def test_macros_need_a_restart_though_the_server_reloads_them() -> None:
    rendered = render_node_configs(CLUSTER)
    current = on_nodes(rendered)
    text = current["ch-2"][CONFIG]
    assert text is not None
    current["ch-2"][CONFIG] = text.replace("<shard>1</shard>", "<shard>2</shard>")
    plan = make_plan(CLUSTER, rendered, current)
    assert [(n.host, n.action) for n in plan.nodes] == [
        ("ch-1", "none"),
        ("ch-2", "restart"),
        ("ch-3", "none"),
    ]
    assert plan.changed[0].changes[0].restart_for == ("macros",)


def test_a_comment_only_difference_is_written_and_reloaded() -> None:
    rendered = render_node_configs(CLUSTER)
    current = on_nodes(rendered)
    text = current["ch-1"][CONFIG]
    assert text is not None
    current["ch-1"][CONFIG] = text.replace("Rendered by", "Written by")
    [change] = make_plan(CLUSTER, rendered, current).nodes[0].changes
    assert (change.elements, change.action) == ((), "reload")


def test_a_missing_or_unreadable_file_on_a_node_needs_a_restart() -> None:
    rendered = render_node_configs(CLUSTER)
    current = on_nodes(rendered)
    current["ch-1"][CONFIG] = None
    current["ch-2"][CONFIG] = "<clickhouse><listen_host>"  # cut short
    current["ch-3"][USERS] = "not xml"
    plan = make_plan(CLUSTER, rendered, current)
    by_host = {n.host: n for n in plan.nodes}
    first = by_host["ch-1"].changes[0]
    assert first.sha256_before is None and "listen_host" in first.restart_for
    assert by_host["ch-2"].changes[0].restart_for == (UNREADABLE,)
    assert by_host["ch-3"].changes[0].restart_for == (UNREADABLE,)


def test_order_is_non_keeper_nodes_then_keeper_followers_then_the_leader() -> None:
    topology = Topology(
        cluster="adpulse",
        shards=(("ch-1", "ch-2", "ch-3"), ("ch-4", "ch-5", "ch-6")),
        keeper=KEEPER,
    )
    rendered = render_node_configs(topology)
    plan = make_plan(topology, rendered, {}, keeper_leader="ch-2")
    assert [n.host for n in plan.nodes] == ["ch-4", "ch-5", "ch-6", "ch-1", "ch-3", "ch-2"]
    assert [n.keeper for n in plan.nodes] == [False, False, False, True, True, True]
    assert all(n.action == "restart" for n in plan.nodes)  # nothing on the nodes yet


def node(host: str, keeper: bool = True) -> NodePlan:
    return NodePlan(host, keeper, ())


def states(**values: str | None) -> dict[str, str | None]:
    return {host.replace("_", "-"): value for host, value in values.items()}


def test_a_keeper_node_restarts_only_while_every_other_voter_answers() -> None:
    healthy = states(ch_1="follower", ch_2="leader", ch_3="follower")
    assert restart_blocker(node("ch-1"), KEEPER, healthy, [], 9181) is None
    one_down = states(ch_1="follower", ch_2="leader", ch_3=None)
    assert restart_blocker(node("ch-1"), KEEPER, one_down, [], 9181) == (
        "refusing to restart ch-1, a Keeper node: the Keeper on ch-3 does not answer `mntr` on "
        "port 9181 as leader or follower, and restarting ch-1 would take a second Keeper node "
        "down; bring it back, then run `adpulse config apply` again (ch-1 is untouched)"
    )
    # Its own voter being down takes no second one down: restarting may bring it back.
    own_down = states(ch_1=None, ch_2="leader", ch_3="follower")
    assert restart_blocker(node("ch-1"), KEEPER, own_down, [], 9181) is None


def test_a_node_without_keeper_needs_only_a_quorum() -> None:
    one_down = states(ch_1="follower", ch_2="leader", ch_3=None)
    assert restart_blocker(node("ch-4", keeper=False), KEEPER, one_down, [], 9181) is None
    two_down = states(ch_1=None, ch_2="leader", ch_3="looking")
    message = restart_blocker(node("ch-4", keeper=False), KEEPER, two_down, [], 9181)
    assert message is not None
    assert message.startswith("refusing to restart ch-4: only 1 of 3 Keeper nodes answer")


def test_one_replica_of_a_shard_down_at_a_time() -> None:
    healthy = states(ch_1="follower", ch_2="leader", ch_3="follower")
    message = restart_blocker(node("ch-2"), KEEPER, healthy, ["ch-1"], 9181)
    assert message is not None
    assert message.startswith(
        "refusing to restart ch-2: ch-1 (another replica of its shard) does not answer"
    )


def test_mntr_state() -> None:
    assert mntr_state(MNTR) == "follower"
    assert mntr_state("zk_server_state\tstandalone\n") == "standalone"
    assert mntr_state("mntr is not executed because it is not in the whitelist.\n") is None
    assert mntr_state("") is None


def test_lag_verdict() -> None:
    events = Replica("adpulse.events", 0.0, False)
    assert lag_verdict([events], expected_tables=1) is None
    assert lag_verdict([], expected_tables=1) == "0 of its 1 replicated tables are loaded"
    assert lag_verdict([Replica("adpulse.events", 0.0, True)], 1) == (
        "read-only (no Keeper session yet): adpulse.events"
    )
    behind = [events, Replica("adpulse.a", 12.0, False), Replica("adpulse.b", 31.0, False)]
    assert lag_verdict(behind, 3) == "31 s behind (max 10 s): adpulse.b 31 s, adpulse.a 12 s"
    assert lag_verdict([Replica("adpulse.a", 10.0, False)], 1) is not None  # under, not at


def test_the_stack_topology_comes_from_its_outputs() -> None:
    doc = json.loads((FIXTURES / "outputs-prod.json").read_text())
    arns = doc["clickhouse_secret_arns"]
    arns |= {
        key: f"arn:aws:secretsmanager:::secret:{key}" for key in STACK_SECRETS if key not in arns
    }
    inv = from_outputs(doc, "prod")
    topology = stack_topology(inv)
    assert topology.hosts == KEEPER and topology.keeper == KEEPER
    assert topology.address("ch-1") == "ch-1.adpulse.internal"
    stray = dataclasses.replace(
        inv, clickhouse_topology_toml=inv.clickhouse_topology_toml.replace("ch-3", "ch-9")
    )
    with pytest.raises(InventoryError, match="its topology names ch-9, which is not among"):
        stack_topology(stray)


def test_the_version_names_the_rendered_set() -> None:
    rendered = render_node_configs(CLUSTER)
    version = rendered_version(rendered)
    assert version.startswith("config-") and len(version) == len("config-") + 12
    assert rendered_version(dict(reversed(rendered.items()))) == version
    other = render_node_configs(CLUSTER, ConfigOptions(api_max_execution_time=20))
    assert rendered_version(other) != version


def test_the_command_says_in_one_line_what_is_missing(tmp_path: Path) -> None:
    missing = tmp_path / "outputs.json"
    result = CliRunner().invoke(
        app, ["config", "apply", "--stack", "prod", "--outputs", str(missing), "--dry-run"]
    )
    assert result.exit_code == 1
    assert result.output == (
        f"error: no outputs file {missing}: write it with `pulumi stack output --json "
        f"--show-secrets --stack prod > {missing}`\n"
    )


class Recorder:
    """A Connection stand-in: `put` and `run` calls recorded, each run succeeding."""

    def __init__(self) -> None:
        self.puts: list[str] = []
        self.stdins: list[str] = []

    def put(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.puts.append(path)

    def run(self, command: object, stdin: bytes | None = None, **_: object) -> Result:
        self.stdins.append((stdin or b"").decode())
        return Result(0, "", "")


class ScriptedNode(Node):
    """A node whose server answers, lags or refuses to restart as the test says; what was
    done to it in `done`. The I/O behind each method is tested on real hosts."""

    def __init__(self, host: str, *, refuse_restart: bool = False, delay: float = 0.0) -> None:
        super().__init__(host, cast(Connection, Recorder()), 9000)
        self.refuse_restart, self.delay, self.done = refuse_restart, delay, list[str]()

    def answers(self) -> bool:
        return True

    def replicas(self) -> list[Replica]:
        return [Replica("adpulse.events", self.delay, False)]

    def keeper_state(self, port: int) -> str | None:
        return "follower"

    def keep(self, paths: Sequence[str]) -> frozenset[str]:
        self.done.append("keep")
        return frozenset(paths)

    def restore(self, paths: Sequence[str], kept: frozenset[str]) -> None:
        self.done.append("restore")

    def restart(self, timeout: float) -> None:
        self.done.append("restart")
        if self.refuse_restart and self.done.count("restart") == 1:
            raise RemoteError(self.host, "systemctl restart clickhouse-server", 1, "", "refused")

    def forget(self) -> None:
        self.done.append("forget")

    def journal(self) -> str:
        return "Exception: Failed to merge config"


def listen_change() -> tuple[dict[str, str], ApplyPlan]:
    old = render_node_configs(CLUSTER)
    new = render_node_configs(CLUSTER, ConfigOptions(listen_host="::"))
    return new, make_plan(CLUSTER, new, on_nodes(old))


def apply_to(nodes: dict[str, ScriptedNode]) -> ConfigApplyError:
    rendered, plan = listen_change()
    policy = Policy(timeout_s=0.05, poll_s=0.01)
    with pytest.raises(ConfigApplyError) as failed:
        apply_plan(plan, CLUSTER, rendered, nodes, "test", policy)
    return failed.value


def test_a_node_that_answers_but_lags_keeps_its_new_config() -> None:
    nodes = {h: ScriptedNode(h, delay=31.0 if h == "ch-1" else 0.0) for h in KEEPER}
    error = apply_to(nodes)
    assert str(error).startswith(
        "ch-1: restarted with the new config but not healthy after 0.05 s: 31 s behind (max 10 s)"
    )
    assert error.restored is None
    assert nodes["ch-1"].done == ["keep", "restart"]  # nothing put back
    assert nodes["ch-2"].done == [] and nodes["ch-3"].done == []
    audit = json.loads(cast(Recorder, nodes["ch-1"].conn).stdins[-1])
    assert audit["outcome"] == "failed" and "restored" not in audit


def test_a_refused_restart_puts_the_previous_config_back_and_restarts_it() -> None:
    nodes = {h: ScriptedNode(h, refuse_restart=True) for h in KEEPER}
    error = apply_to(nodes)
    assert str(error).startswith(
        "ch-1: the new config failed: `systemctl restart clickhouse-server` failed (ch-1: "
        "`systemctl restart clickhouse-server` exited 1: refused); its journal: Exception: "
        "Failed to merge config. Its previous config was put back and it was restarted with it"
    )
    assert error.restored is True
    assert nodes["ch-1"].done == ["keep", "restart", "restore", "restart", "forget"]
    assert nodes["ch-2"].done == [] and nodes["ch-3"].done == []
    audit = json.loads(cast(Recorder, nodes["ch-1"].conn).stdins[-1])
    assert audit["outcome"] == "failed" and audit["restored"] is True
