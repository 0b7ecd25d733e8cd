"""Topology maths and validation: every bad shape is refused with a message naming it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adpulse.errors import ConfigError
from adpulse.topology import Node, Ports, Topology, load_topology, single, three_replicas


def test_single_is_one_unreplicated_node_without_keeper() -> None:
    topology = single()
    assert topology.nodes == (Node(host="localhost", shard=1, replica=1, keeper_id=None),)
    assert not topology.clustered
    assert not topology.replicated
    assert topology.keeper == ()


def test_three_replicas_share_one_shard_and_all_run_keeper() -> None:
    topology = three_replicas()
    assert topology.nodes == (
        Node("ch-1", 1, 1, 1),
        Node("ch-2", 1, 2, 2),
        Node("ch-3", 1, 3, 3),
    )
    assert topology.clustered and topology.replicated
    assert topology.summary() == "adpulse: 1 shard(s) x 3 replica(s)"


def test_keeper_ids_follow_keeper_order_not_host_order() -> None:
    topology = Topology(
        cluster="c",
        shards=(("a", "b", "c"), ("d", "e", "f")),
        keeper=("e", "a", "c"),
    )
    ids = {node.host: node.keeper_id for node in topology.nodes}
    assert ids == {"a": 2, "b": None, "c": 3, "d": None, "e": 1, "f": None}
    assert [(n.shard, n.replica) for n in topology.nodes if n.host == "e"] == [(2, 2)]


@pytest.mark.parametrize("spec", ["single", "cluster"])
def test_named_topologies_load(spec: str) -> None:
    expected = single() if spec == "single" else three_replicas()
    assert load_topology(spec) == expected


def test_toml_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "topology.toml"
    path.write_text(
        'cluster = "ads"\nshards = [["n1", "n2", "n3"], ["n4", "n5", "n6"]]\n'
        'keeper = ["n1", "n4", "n5"]\n'
    )
    topology = load_topology(str(path))
    assert topology.cluster == "ads"
    assert topology.hosts == ("n1", "n2", "n3", "n4", "n5", "n6")
    assert topology.keeper == ("n1", "n4", "n5")
    assert topology.ports == Ports()


@pytest.mark.parametrize(
    ("shards", "keeper", "message"),
    [
        ((), (), "no hosts"),
        (((),), (), "no hosts"),
        ((("a", "b", "a"),), ("a", "b", "c"), "host(s) a appear more than once"),
        ((("a", "b"), ("b", "c")), (), "host(s) b appear more than once"),
        ((("a", "b"),), ("a", "b"), "Keeper quorum of an odd number >= 3 hosts, got 2"),
        ((("a", "b", "c"),), (), "Keeper quorum of an odd number >= 3 hosts, got 0"),
        (
            (("a", "b"), ("c", "d")),
            ("a", "b", "c", "d"),
            "Keeper quorum of an odd number >= 3 hosts, got 4",
        ),
        ((("a", "b", "c"),), ("a", "b", "zk-9"), "keeper host(s) zk-9 are not ClickHouse nodes"),
        ((("a", "b", "c"),), ("a", "a", "b"), "a keeper host is listed twice"),
        ((("a", "b"), ("c",)), ("a", "b", "c"), "every shard needs the same number of replicas"),
        ((("bad host",),), (), "'bad host' is not a valid host name"),
    ],
)
def test_bad_topologies_name_the_problem(
    shards: tuple[tuple[str, ...], ...], keeper: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ConfigError, match="topology") as excinfo:
        Topology(cluster="adpulse", shards=shards, keeper=keeper)
    assert message in str(excinfo.value)


def test_cluster_name_must_be_an_identifier() -> None:
    with pytest.raises(ConfigError, match="cluster name 'ad-pulse' is not a plain identifier"):
        Topology(cluster="ad-pulse", shards=(("a",),))


def test_unknown_spec_says_what_is_accepted(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="not 'single', 'cluster' or an existing TOML file"):
        load_topology(str(missing))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('shards = [["a"]\n', "topology file .*: "),
        ("cluster = \"x\"\nshards = 'a'\n", "'shards' must be a list of host lists"),
        ('shards = ["a", "b"]\n', "'shards' must be a list of host lists"),
        ('shards = [["a"]]\nkeeper = "a"\n', "'keeper' must be a list of hosts"),
        ("shards = []\n", "no hosts"),
    ],
)
def test_malformed_toml_is_a_config_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "topology.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_topology(str(path))


def test_malformed_toml_names_the_file_and_position(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('shards = [["a"]]\ncluster = = "x"\n')
    with pytest.raises(ConfigError) as excinfo:
        load_topology(str(path))
    assert str(path) in str(excinfo.value)
    assert "line 2" in str(excinfo.value)


def test_without_a_domain_nodes_are_named_as_they_are() -> None:
    assert three_replicas().address("ch-1") == "ch-1"
    assert single().address("localhost") == "localhost"


def test_with_a_domain_nodes_are_named_by_fqdn() -> None:
    topology = Topology(cluster="c", shards=(("ch-1",),), domain="adpulse.internal")
    assert topology.address("ch-1") == "ch-1.adpulse.internal"
    assert topology.hosts == ("ch-1",), "host names themselves stay short"


@pytest.mark.parametrize(
    "domain", ["adpulse.internal.", ".internal", "ad_pulse.internal", "a..b", "-x.internal"]
)
def test_a_domain_that_is_not_a_dns_name_is_refused(domain: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"domain {domain!r} is not a DNS name")):
        Topology(cluster="c", shards=(("ch-1",),), domain=domain)


def test_a_domain_that_makes_names_too_long_is_refused() -> None:
    long_domain = ".".join(["d" * 60] * 4) + ".internal"  # 252 characters, each label valid
    with pytest.raises(ConfigError, match=r"longer than DNS allows \(253\)"):
        Topology(cluster="c", shards=(("ch-1",),), domain=long_domain)


def test_toml_file_may_name_the_domain(tmp_path: Path) -> None:
    path = tmp_path / "topology.toml"
    path.write_text('shards = [["n1"]]\ndomain = "db.example.internal"\n')
    assert load_topology(str(path)).address("n1") == "n1.db.example.internal"
    path.write_text('shards = [["n1"]]\ndomain = 3\n')
    with pytest.raises(ConfigError, match="'domain' must be a string"):
        load_topology(str(path))
