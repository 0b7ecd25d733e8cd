"""What the same job costs elsewhere: ClickHouse Cloud at the same capacity, Kinesis for MSK."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cost.resources import Pricing, role_of
from cost.traffic import GIB, stored_bytes

# Memory of the instance types stacks/ accepts for ClickHouse (AWS EC2 instance type pages).
MEMORY_GIB = {
    "r6g.large": 16,
    "r6g.xlarge": 32,
    "r6g.2xlarge": 64,
    "r6g.4xlarge": 128,
    "r7g.large": 16,
    "r7g.xlarge": 32,
    "r7g.2xlarge": 64,
    "r7g.4xlarge": 128,
    "m6g.large": 8,
    "m6g.xlarge": 16,
    "m6g.2xlarge": 32,
    "m7g.large": 8,
    "m7g.xlarge": 16,
    "m7g.2xlarge": 32,
    "c6g.xlarge": 8,
    "t4g.small": 2,
    "t4g.medium": 4,
    "t4g.large": 8,
}
CLICKHOUSE_CLOUD_UNIT_GIB = 8  # one compute unit: 8 GiB RAM, 2 vCPU
CLICKHOUSE_CLOUD_HOURS = 732  # ClickHouse's billing examples use 732 h a month
KINESIS_RECORDS_PER_SHARD = 1000  # per second
KINESIS_MB_PER_SHARD = 1.0  # per second
KINESIS_PUT_UNIT_BYTES = 25_000
# On-demand data in is billed per record rounded up to the nearest KB (1,024 bytes), data out
# as read (aws.amazon.com/kinesis/data-streams/pricing, "Key terms").
KINESIS_ON_DEMAND_IN_ROUNDING = 1024
SEED_CLAIM_USD = 15_000  # the seed's "ClickHouse Cloud would cost $15K/month"


@dataclass(frozen=True)
class Alternative:
    name: str
    replaces: str  # the component it stands in for
    monthly_usd: float
    versus_usd: float  # what that component costs in this stack
    detail: str
    sources: tuple[str, ...]


def clickhouse_cloud(p: Pricing, versus: float) -> list[Alternative]:
    gib = sum(
        MEMORY_GIB.get(i.settings["instanceType"], 0)
        for i in p.inventory.of_type("aws:ec2/instance:Instance")
        if role_of(i) == "clickhouse"
    )
    if not gib:
        return []
    units = gib / CLICKHOUSE_CLOUD_UNIT_GIB
    storage = p.catalogue.price("clickhouse-cloud/storage", "us-east-1")
    tb = stored_bytes(p) / 1e12 * 2  # the data and one backup, both billed at the storage rate
    out = []
    for tier in ("scale", "enterprise"):
        compute = p.catalogue.price(f"clickhouse-cloud/{tier}/compute", "us-east-1")
        total = units * CLICKHOUSE_CLOUD_HOURS * compute.usd + tb * storage.usd
        out.append(
            Alternative(
                f"ClickHouse Cloud {tier.title()}",
                "clickhouse",
                total,
                versus,
                f"{units:g} units ({gib} GiB, always on) x {CLICKHOUSE_CLOUD_HOURS} h x "
                f"${compute.usd}/unit-h + {tb:,.2f} TB (data + 1 backup) x "
                f"${storage.usd}/TB-month. The seed's ${SEED_CLAIM_USD:,} does not reproduce "
                "from these published prices",
                (compute.source, storage.source),
            )
        )
    return out


def kinesis(p: Pricing, versus: float) -> list[Alternative]:
    u = p.usage
    per_s = u.events_per_day / 86_400 * u.peak_to_average
    mb_s = per_s * u.kafka_bytes_per_event / 1e6
    shards = max(1, math.ceil(max(per_s / KINESIS_RECORDS_PER_SHARD, mb_s / KINESIS_MB_PER_SHARD)))
    month_events = u.events_per_day * p.hours / 24
    units = month_events * math.ceil(max(u.kafka_bytes_per_event, 1) / KINESIS_PUT_UNIT_BYTES)
    shard = p.catalogue.price("kinesis/shard", p.region)
    put = p.catalogue.price("kinesis/put-units", p.region)
    provisioned = shards * p.hours * shard.usd + units / 1e6 * put.usd
    billed_in = math.ceil(max(u.kafka_bytes_per_event, 1) / KINESIS_ON_DEMAND_IN_ROUNDING)
    gb_in = month_events * billed_in * KINESIS_ON_DEMAND_IN_ROUNDING / GIB
    gb_out = month_events * u.kafka_bytes_per_event / GIB
    stream = p.catalogue.price("kinesis/on-demand/stream", p.region)
    ingest = p.catalogue.price("kinesis/on-demand/ingest", p.region)
    retrieve = p.catalogue.price("kinesis/on-demand/retrieve", p.region)
    on_demand = p.hours * stream.usd + gb_in * ingest.usd + gb_out * retrieve.usd
    return [
        Alternative(
            "Kinesis provisioned (the seed's alternative)",
            "kafka",
            provisioned,
            versus,
            f"{shards} shards for {per_s:,.0f} events/s at peak ({u.peak_to_average:g}x "
            f"average) + {units / 1e6:,.0f}M PUT units; 24 h retention, one consumer",
            (shard.source, put.source),
        ),
        Alternative(
            "Kinesis on-demand",
            "kafka",
            on_demand,
            versus,
            f"{gb_in:,.0f} GB in (each {u.kafka_bytes_per_event:,.0f}-byte event billed as "
            f"{billed_in} KB) and {gb_out:,.0f} GB out a month, one consumer",
            (stream.source, ingest.source, retrieve.source),
        ),
    ]
