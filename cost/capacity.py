"""Will the data fit: storage each ClickHouse node and broker needs against its volume."""

from __future__ import annotations

from dataclasses import dataclass

from cost.resources import Pricing, role_of
from cost.traffic import GIB, replicas_per_shard, stored_bytes


@dataclass(frozen=True)
class Fit:
    what: str  # "ClickHouse node" / "MSK broker"
    needed_gb: float  # steady state, per node or broker
    volume_gb: float
    usable_gb: float  # volume x the headroom share
    basis: str  # how needed_gb was computed

    @property
    def fits(self) -> bool:
        return self.needed_gb <= self.usable_gb

    @property
    def warning(self) -> str:
        if self.fits:
            return ""
        return (
            f"{self.what} needs {self.needed_gb:,.0f} GB but its {self.volume_gb:,.0f} GB "
            f"volume holds {self.usable_gb:,.0f} GB of data: raise the volume size or "
            "shorten the retention"
        )


def clickhouse_fit(p: Pricing) -> Fit | None:
    attached = {
        a.settings.get("volumeId"): a.settings.get("instanceId")
        for a in p.inventory.of_type("aws:ec2/volumeAttachment:VolumeAttachment")
    }
    nodes = {
        i.id for i in p.inventory.of_type("aws:ec2/instance:Instance") if role_of(i) == "clickhouse"
    }
    sizes = [
        float(v.settings["size"])
        for v in p.inventory.of_type("aws:ebs/volume:Volume")
        if attached.get(v.id) in nodes
    ]
    if not sizes:
        return None
    shards, _ = replicas_per_shard(p)
    u = p.usage
    needed = stored_bytes(p) / shards / GIB
    volume = min(sizes)
    return Fit(
        "ClickHouse node",
        needed,
        volume,
        volume * u.disk_headroom,
        f"{u.events_per_day:,.0f} events/day x ({u.clickhouse_bytes_per_event:.1f} B x "
        f"{u.raw_retention_days:g} days raw + {u.rollup_bytes_per_event:.1f} B x "
        f"{u.rollup_retention_days:g} days rollups) / {shards} shard(s)",
    )


def kafka_fit(p: Pricing) -> Fit | None:
    clusters = p.inventory.of_type("aws:msk/cluster:Cluster")
    if not clusters:
        return None
    s = clusters[0].settings
    brokers = float(s["numberOfBrokerNodes"])
    volume = float(s["brokerNodeGroupInfo"]["storageInfo"]["ebsStorageInfo"]["volumeSize"])
    rf = next(
        (float(e.value) for e in p.inventory.exports if e.name == "topic_replication_factor"), 3.0
    )
    u = p.usage
    needed = (
        u.events_per_day
        * u.kafka_bytes_per_event
        * u.kafka_retention_hours
        / 24
        * rf
        / brokers
        / GIB
    )
    return Fit(
        "MSK broker",
        needed,
        volume,
        volume * u.disk_headroom,
        f"{u.events_per_day:,.0f} events/day x {u.kafka_bytes_per_event:.0f} B x "
        f"{u.kafka_retention_hours:g} h retention x RF {rf:g} / {brokers:g} brokers",
    )


def fits(p: Pricing) -> list[Fit]:
    return [f for f in (clickhouse_fit(p), kafka_fit(p)) if f is not None]
