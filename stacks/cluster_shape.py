"""The ClickHouse cluster's shape in the stack: shards x replicas, names, placement, the
domain the nodes live in, and the forms the services read it in. Pure (no Pulumi):
stacks/config/ validates with it.
"""

from __future__ import annotations

import dataclasses
import json

from adpulse import names
from adpulse.clickhouse.roles import ROLE_USERS
from adpulse.topology import Topology, three_replicas

# The default shape, and what the settings call `cluster` (ADPULSE_TOPOLOGY=cluster).
TOPOLOGY: Topology = three_replicas()
DEFAULT_VERSION = "25.8.8.26"  # an LTS release; `adpulse:clickhouseVersion` overrides it
# Where services read a topology other than `cluster` from (the settings take a TOML path).
TOPOLOGY_FILE = "/etc/adpulse/clickhouse-topology.toml"


def grid_topology(shards: int, replicas: int) -> Topology:
    """`shards` x `replicas` nodes named ch-1..ch-N shard by shard, Keeper on the first three
    (one if there are fewer and nothing is replicated; none for a single node)."""
    if shards < 1 or replicas < 1:
        raise ValueError(f"topology {shards}x{replicas}: shards and replicas start at 1")
    count = shards * replicas
    if replicas > 1 and count < 3:
        raise ValueError(
            f"topology {shards}x{replicas}: replicated tables need a Keeper quorum of 3 nodes, "
            f"and {count} nodes cannot hold one; use 1x3 or 1x1"
        )
    hosts = [f"ch-{n}" for n in range(1, count + 1)]
    keeper = hosts[:3] if count >= 3 else hosts[:1] if count > 1 else []
    return Topology(
        cluster=names.CLUSTER,
        shards=tuple(tuple(hosts[s * replicas : (s + 1) * replicas]) for s in range(shards)),
        keeper=tuple(keeper),
    )


def in_domain(topology: Topology, domain: str) -> Topology:
    """`topology` with its nodes in `domain` (the stack's private zone); one that already names
    a domain must name this one."""
    if topology.domain and topology.domain != domain:
        raise ValueError(
            f"topology domain {topology.domain!r} differs from the nodes' domain {domain!r} "
            "(adpulse:internalDomain); drop the topology's domain or make them equal"
        )
    return dataclasses.replace(topology, domain=domain)


def placement(topology: Topology, zones: int) -> list[int]:
    """Each host's subnet (AZ) index, round robin; replicas of a shard never share an AZ."""
    widest = max(len(shard) for shard in topology.shards)
    if widest > zones:
        raise ValueError(
            f"{widest} replicas per shard need {widest} AZs, the network has {zones}; "
            "two replicas in one AZ would not survive its loss"
        )
    return [i % zones for i in range(len(topology.hosts))]


def clickhouse_url(topology: Topology, user: str = ROLE_USERS["ingest"]) -> str:
    """`clickhouses://user@ch-1.<domain>:9440,.../adpulse`, without a password (see Secrets
    Manager). Hosts by `Topology.address`: the FQDN, a SAN of each node's certificate, which
    resolves through the private zone whatever search domain the client has."""
    hosts = ",".join(f"{topology.address(h)}:{topology.ports.tcp_secure}" for h in topology.hosts)
    return f"clickhouses://{user}@{hosts}/{names.DATABASE}"


def topology_json(topology: Topology) -> str:
    """The cluster as JSON: shards of replica hosts (their names: macros, replica names), Keeper
    voters, ports, the domain, and each host's address (what to connect to: the FQDN)."""
    return json.dumps(
        {
            "cluster": topology.cluster,
            "shards": [list(shard) for shard in topology.shards],
            "keeper": list(topology.keeper),
            "ports": vars(topology.ports),
            "domain": topology.domain,
            "addresses": {host: topology.address(host) for host in topology.hosts},
        },
        sort_keys=True,
    )


def topology_toml(topology: Topology) -> str:
    """The topology file `adpulse.topology.load_topology` reads (host names need no escaping),
    with its `domain` when it has one: `adpulse config render` then names nodes by FQDN."""
    shards = ", ".join(json.dumps(list(shard)) for shard in topology.shards)
    domain = f"domain = {json.dumps(topology.domain)}\n" if topology.domain else ""
    return (
        f"cluster = {json.dumps(topology.cluster)}\n"
        f"shards = [{shards}]\n"
        f"keeper = {json.dumps(list(topology.keeper))}\n"
        f"{domain}"
    )


def settings_topology(topology: Topology) -> str:
    """ADPULSE_TOPOLOGY for this shape: `cluster`, or the path to write `topology_toml` to.
    The domain does not count: the services take from the topology only the shape (ON CLUSTER,
    Distributed tables) and reach the nodes by `clickhouse_url`, which names them by FQDN."""
    shape = dataclasses.replace(topology, domain="")
    return "cluster" if shape == TOPOLOGY else TOPOLOGY_FILE
