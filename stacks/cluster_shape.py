"""The ClickHouse cluster's shape in the stack: shards x replicas, names, placement, and the
forms the services read it in. Pure (no Pulumi): stacks/config.py validates with it.
"""

from __future__ import annotations

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
    """`clickhouses://user@ch-1:9440,.../adpulse`, without a password (see Secrets Manager)."""
    hosts = ",".join(f"{host}:{topology.ports.tcp_secure}" for host in topology.hosts)
    return f"clickhouses://{user}@{hosts}/{names.DATABASE}"


def topology_json(topology: Topology) -> str:
    """The cluster as JSON: shards of replica hosts, Keeper voters and ports."""
    return json.dumps(
        {
            "cluster": topology.cluster,
            "shards": [list(shard) for shard in topology.shards],
            "keeper": list(topology.keeper),
            "ports": vars(topology.ports),
        },
        sort_keys=True,
    )


def topology_toml(topology: Topology) -> str:
    """The topology file `adpulse.topology.load_topology` reads (host names need no escaping)."""
    shards = ", ".join(json.dumps(list(shard)) for shard in topology.shards)
    return (
        f"cluster = {json.dumps(topology.cluster)}\n"
        f"shards = [{shards}]\n"
        f"keeper = {json.dumps(list(topology.keeper))}\n"
    )


def settings_topology(topology: Topology) -> str:
    """ADPULSE_TOPOLOGY for this shape: `cluster`, or the path to write `topology_toml` to."""
    return "cluster" if topology == TOPOLOGY else TOPOLOGY_FILE
