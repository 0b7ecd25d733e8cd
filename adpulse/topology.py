"""One description of the ClickHouse cluster drives configs, DDL and the Pulumi stack.

Pure: loading a TOML file is the only I/O, and validation names the problem it finds.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from adpulse import names
from adpulse.errors import ConfigError

_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Ports:
    """Listening ports; TLS ports are rendered alongside the plain ones."""

    tcp: int = 9000
    tcp_secure: int = 9440
    http: int = 8123
    https: int = 8443
    interserver_http: int = 9009
    keeper: int = 9181
    keeper_raft: int = 9234
    prometheus: int = 9363


@dataclass(frozen=True)
class Node:
    """One ClickHouse server: its place in the cluster gives its macros."""

    host: str
    shard: int
    replica: int
    keeper_id: int | None


@dataclass(frozen=True)
class Topology:
    """Cluster name, shards (each a tuple of replica hosts) and the Keeper ensemble.

    `domain`, when set, is the DNS domain the hosts live in (the stack's private zone): the
    configs then name other nodes by `address(host)`, the FQDN, so no node depends on a DHCP
    search domain. Host names themselves (macros, replica names, Keeper paths) stay short.
    """

    cluster: str
    shards: tuple[tuple[str, ...], ...]
    keeper: tuple[str, ...] = ()
    ports: Ports = field(default_factory=Ports)
    domain: str = ""

    def __post_init__(self) -> None:
        validate(self)

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(host for shard in self.shards for host in shard)

    @property
    def clustered(self) -> bool:
        """More than one server: DDL goes ON CLUSTER and reads go through Distributed tables."""
        return len(self.hosts) > 1

    @property
    def replicated(self) -> bool:
        return any(len(shard) > 1 for shard in self.shards)

    def address(self, host: str) -> str:
        """The name other nodes reach `host` by: `host.domain`, or `host` without a domain."""
        return f"{host}.{self.domain}" if self.domain else host

    @property
    def nodes(self) -> tuple[Node, ...]:
        return tuple(
            Node(
                host=host,
                shard=s,
                replica=r,
                keeper_id=self.keeper.index(host) + 1 if host in self.keeper else None,
            )
            for s, shard in enumerate(self.shards, start=1)
            for r, host in enumerate(shard, start=1)
        )

    def summary(self) -> str:
        replicas = len(self.shards[0])
        return f"{self.cluster}: {len(self.shards)} shard(s) x {replicas} replica(s)"


def validate(topology: Topology) -> None:
    """Raise ConfigError naming the first problem; a valid topology returns None."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", topology.cluster):
        raise ConfigError(f"topology: cluster name {topology.cluster!r} is not a plain identifier")
    hosts = topology.hosts
    if not topology.shards or not hosts or any(not shard for shard in topology.shards):
        raise ConfigError("topology: no hosts; give at least one shard with one host")
    for host in hosts + topology.keeper:
        if not _HOST.fullmatch(host):
            raise ConfigError(f"topology: {host!r} is not a valid host name")
    if topology.domain:
        _validate_domain(topology)
    duplicates = sorted({h for h in hosts if hosts.count(h) > 1})
    if duplicates:
        raise ConfigError(f"topology: host(s) {', '.join(duplicates)} appear more than once")
    if len({len(shard) for shard in topology.shards}) > 1:
        raise ConfigError("topology: every shard needs the same number of replicas")
    if len(set(topology.keeper)) != len(topology.keeper):
        raise ConfigError("topology: a keeper host is listed twice")
    stray = [h for h in topology.keeper if h not in hosts]
    if stray:
        raise ConfigError(
            f"topology: keeper host(s) {', '.join(stray)} are not ClickHouse nodes; "
            "Keeper runs co-located on the ClickHouse servers"
        )
    if topology.replicated and (len(topology.keeper) < 3 or len(topology.keeper) % 2 == 0):
        raise ConfigError(
            f"topology: replicated tables need a Keeper quorum of an odd number >= 3 hosts, "
            f"got {len(topology.keeper)}; list 3 (or 5) of the nodes under 'keeper'"
        )


def _validate_domain(topology: Topology) -> None:
    labels = topology.domain.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise ConfigError(
            f"topology: domain {topology.domain!r} is not a DNS name (labels of letters, digits "
            "and inner hyphens, joined by dots, no trailing dot)"
        )
    longest = max(topology.hosts + topology.keeper, key=len)
    if len(topology.address(longest)) > 253:
        raise ConfigError(
            f"topology: {topology.address(longest)!r} is longer than DNS allows (253); "
            "use a shorter domain or host names"
        )


def single(host: str = "localhost") -> Topology:
    """One server, no Keeper: plain MergeTree tables."""
    return Topology(cluster=names.CLUSTER, shards=((host,),))


def three_replicas(hosts: tuple[str, str, str] = ("ch-1", "ch-2", "ch-3")) -> Topology:
    """The production shape: 1 shard x 3 replicas with Keeper on all three."""
    return Topology(cluster=names.CLUSTER, shards=(hosts,), keeper=hosts)


def load_topology(spec: str) -> Topology:
    """'single', 'cluster', or the path of a TOML file with `cluster`, `shards`, `keeper` and
    optionally `domain`."""
    if spec == "single":
        return single()
    if spec == "cluster":
        return three_replicas()
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"topology {spec!r}: not 'single', 'cluster' or an existing TOML file")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"topology file {path}: {exc}") from None
    shards = raw.get("shards")
    if not isinstance(shards, list) or not all(isinstance(s, list) for s in shards):
        raise ConfigError(f"topology file {path}: 'shards' must be a list of host lists")
    keeper = raw.get("keeper", [])
    if not isinstance(keeper, list):
        raise ConfigError(f"topology file {path}: 'keeper' must be a list of hosts")
    domain = raw.get("domain", "")
    if not isinstance(domain, str):
        raise ConfigError(
            f"topology file {path}: 'domain' must be a string, e.g. \"example.internal\""
        )
    return Topology(
        cluster=str(raw.get("cluster", names.CLUSTER)),
        shards=tuple(tuple(str(h) for h in s) for s in shards),
        keeper=tuple(str(h) for h in keeper),
        domain=domain,
    )
