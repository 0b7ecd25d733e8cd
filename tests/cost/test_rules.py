"""Each pricing rule against arithmetic done by hand (prices from tests/cost/conftest.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cost.capacity import fits
from cost.catalogue import Catalogue
from cost.compare import clickhouse_cloud, kinesis
from cost.lines import Line
from cost.report import price_inventory
from cost.resources import Pricing, resource_lines
from cost.traffic import usage_lines
from cost.usage import Usage
from stacks.inventory import Inventory

from .conftest import res, seed_shape

GIB = 2**30  # AWS's billing GB (S3's FAQ: 1,073,741,824 bytes per GB), by hand here


def total(lines: list[Line], fragment: str) -> float:
    return sum((x.monthly_usd for x in lines if fragment in x.item), 0.0)


def lines_of(inventory: Inventory, catalogue: Catalogue, usage: Usage) -> list[Line]:
    lines, unknown = resource_lines(Pricing(inventory, catalogue, usage))
    assert unknown == []
    return lines


def test_an_instance_is_its_hours_and_its_gp3_root(catalogue: Catalogue, usage: Usage) -> None:
    lines = lines_of(seed_shape(), catalogue, usage)
    assert total(lines, "EC2 r6g.2xlarge") == pytest.approx(3 * 730 * 0.4032)  # 883.008
    assert total(lines, "root volume") == pytest.approx(3 * 30 * 0.08)  # 7.20


def test_gp3_pays_iops_and_throughput_only_above_the_free_baseline(
    catalogue: Catalogue, usage: Usage
) -> None:
    lines = lines_of(seed_shape(volume_gb=500), catalogue, usage)
    assert total(lines, "data volume: gp3 500 GB") == pytest.approx(3 * 500 * 0.08)  # 120
    assert total(lines, "IOPS above 3000") == pytest.approx(3 * 3000 * 0.005)  # 45
    assert total(lines, "MB/s above 125") == pytest.approx(3 * 125 * 0.04)  # 15
    baseline = Inventory(
        "b",
        (res("aws:ebs/volume:Volume", "v", size=100, iops=3000, throughput=125),),
        config={"aws:region": "us-east-1"},
    )
    only = lines_of(baseline, catalogue, usage)
    assert [x.price_key for x in only] == ["ebs/gp3/storage"]
    assert only[0].monthly_usd == pytest.approx(8.0)


def test_msk_is_broker_hours_and_storage_per_broker(catalogue: Catalogue, usage: Usage) -> None:
    lines = lines_of(seed_shape(), catalogue, usage)
    assert total(lines, "MSK 3 x kafka.m7g.large") == pytest.approx(446.76)
    assert total(lines, "MSK storage") == pytest.approx(150.0)
    assert all(x.component == "kafka" for x in lines if x.price_key.startswith("msk/"))


def test_redis_counts_every_node_of_the_group(catalogue: Catalogue, usage: Usage) -> None:
    lines = lines_of(seed_shape(), catalogue, usage)
    assert total(lines, "ElastiCache 2 x cache.m6g.large") == pytest.approx(217.54)
    assert total(lines, "snapshots") == pytest.approx(7 * 1 * 0.085)
    shards = Inventory(
        "s",
        (
            res(
                "aws:elasticache/replicationGroup:ReplicationGroup",
                "r",
                nodeType="cache.m6g.large",
                numNodeGroups=2,
                replicasPerNodeGroup=1,
            ),
        ),
        config={"aws:region": "us-east-1"},
    )
    assert total(lines_of(shards, catalogue, usage), "ElastiCache") == pytest.approx(
        4 * 730 * 0.149
    )


def test_rds_multi_az_uses_the_multi_az_prices(catalogue: Catalogue, usage: Usage) -> None:
    lines = lines_of(seed_shape(), catalogue, usage)
    assert total(lines, "RDS PostgreSQL") == pytest.approx(730 * 0.13)  # 94.90
    assert total(lines, "RDS gp3 50 GB") == pytest.approx(50 * 0.23)  # 11.50


def test_an_internet_facing_alb_pays_hours_and_a_public_ipv4_per_az(
    catalogue: Catalogue, usage: Usage
) -> None:
    lines = lines_of(seed_shape(), catalogue, usage)
    assert total(lines, "ALB") == pytest.approx(730 * 0.0225)  # 16.425
    assert total(lines, "public IPv4") == pytest.approx(3 * 730 * 0.005)  # 10.95


def test_nat_endpoints_and_elastic_ips(catalogue: Catalogue, usage: Usage) -> None:
    inv = Inventory(
        "n",
        (
            res("aws:ec2/natGateway:NatGateway", "nat-1"),
            res("aws:ec2/eip:Eip", "eip-1"),
            res(
                "aws:ec2/vpcEndpoint:VpcEndpoint",
                "ssm",
                vpcEndpointType="Interface",
                serviceName="com.amazonaws.us-east-1.ssm",
                subnetIds=["a", "b", "c"],
            ),
            res(
                "aws:ec2/vpcEndpoint:VpcEndpoint",
                "s3",
                vpcEndpointType="Gateway",
                serviceName="com.amazonaws.us-east-1.s3",
            ),
        ),
        config={"aws:region": "us-east-1"},
    )
    p = Pricing(inv, catalogue, usage)
    lines, _ = resource_lines(p)
    assert total(lines, "NAT gateway") == pytest.approx(730 * 0.045)  # 32.85
    assert total(lines, "Elastic IP") == pytest.approx(730 * 0.005)  # 3.65
    assert total(lines, "interface endpoint ssm x 3 AZ") == pytest.approx(3 * 730 * 0.01)
    assert not [x for x in lines if "s3" in x.item]  # gateway endpoints are free
    data = usage_lines(p)
    assert total(data, "NAT data processed") == pytest.approx(30 * 0.045)
    assert total(data, "interface endpoint data") == pytest.approx(30 * 0.01)


def test_inter_az_transfer_is_billed_both_ways(catalogue: Catalogue, usage: Usage) -> None:
    data = usage_lines(Pricing(seed_shape(), catalogue, usage))
    month_gb = 200e6 * (730 / 24) * 300 / GIB  # 1,699.66 GB of Kafka messages
    assert total(data, "producers to MSK") == pytest.approx(2 * month_gb * 2 / 3 * 0.01)  # 22.66
    assert total(data, "MSK to the consumer") == pytest.approx(22.662, abs=1e-3)
    # 2 of 3 replicas fetch every part (42 B an event) from the replica that took the insert
    parts_gb = 200e6 * (730 / 24) * 42 / GIB
    assert total(data, "replica fetches") == pytest.approx(2 * parts_gb * 2 * 0.01)  # 9.52
    assert not [x for x in data if "replication" in x.item.lower() and "MSK" in x.item]


def test_one_replica_fetches_nothing(catalogue: Catalogue, usage: Usage) -> None:
    inv = seed_shape()
    single = Inventory(inv.stack, inv.resources, (), inv.config)
    one = Inventory(
        single.stack,
        tuple(r for r in single.resources if r.name not in ("ch-2", "ch-3")),
        (),
        single.config,
    )
    assert total(usage_lines(Pricing(one, catalogue, usage)), "replica fetches") == 0


def test_alb_lcus_and_egress_follow_the_request_rate(catalogue: Catalogue, usage: Usage) -> None:
    data = usage_lines(Pricing(seed_shape(), catalogue, usage))
    gb_per_hour = 10 * 4000 * 3600 / GIB  # 0.134 GB/h beats 10 x 0.05 / 25 = 0.02 new-conn LCU
    assert total(data, "ALB LCUs") == pytest.approx(gb_per_hour * 730 * 0.008)  # 0.78
    assert total(data, "internet egress") == pytest.approx(gb_per_hour * 730 * 0.09)  # 8.81


def test_backups_keep_full_copies_of_the_steady_state_data(
    catalogue: Catalogue, usage: Usage
) -> None:
    data = usage_lines(Pricing(seed_shape(), catalogue, usage))
    stored_gb = 200e6 * (40 * 90 + 2 * 730) / GIB  # 1.012e12 bytes = 942.50 GB
    assert total(data, "daily full backups") == pytest.approx(14 * stored_gb * 0.023)  # 303.48
    assert total(data, "S3 PUTs") == pytest.approx(20_000 * 730 / 24 / 1000 * 0.005)  # 3.04


def test_capacity_warns_when_the_retention_outgrows_the_volumes(
    catalogue: Catalogue, usage: Usage
) -> None:
    small = {f.what: f for f in fits(Pricing(seed_shape(volume_gb=500), catalogue, usage))}
    assert small["ClickHouse node"].needed_gb == pytest.approx(1.012e12 / GIB)  # 942.50
    assert (
        not small["ClickHouse node"].fits
        and "raise the volume size" in small["ClickHouse node"].warning
    )
    # 200M x 300 B x 7 days x RF 3 / 3 brokers = 420e9 bytes = 391.16 GB: fits 500 GB x 0.8
    assert small["MSK broker"].needed_gb == pytest.approx(420e9 / GIB)
    assert small["MSK broker"].fits
    # 8 days: 480e9 bytes = 447.03 GB, over the 400 GB usable
    eight_days = replace(usage, kafka_retention_hours=192)
    longer = {f.what: f for f in fits(Pricing(seed_shape(volume_gb=500), catalogue, eight_days))}
    assert longer["MSK broker"].needed_gb == pytest.approx(480e9 / GIB)
    assert not longer["MSK broker"].fits
    big = {f.what: f for f in fits(Pricing(seed_shape(volume_gb=1500), catalogue, usage))}
    assert big["ClickHouse node"].fits and big["ClickHouse node"].warning == ""


def test_clickhouse_cloud_at_the_same_memory(catalogue: Catalogue, usage: Usage) -> None:
    scale, enterprise = clickhouse_cloud(Pricing(seed_shape(), catalogue, usage), 1000.0)
    tb = 2 * 1.012  # the data and one backup
    assert scale.monthly_usd == pytest.approx(24 * 732 * 0.2985 + tb * 25.30)  # 5,295.26
    assert enterprise.monthly_usd == pytest.approx(24 * 732 * 0.3903 + tb * 25.30)
    assert "does not reproduce" in scale.detail


def test_kinesis_shards_cover_the_peak(catalogue: Catalogue, usage: Usage) -> None:
    provisioned, on_demand = kinesis(Pricing(seed_shape(), catalogue, usage), 600.0)
    # 200M / 86,400 x 3 = 6,944 records/s at peak: 7 shards; 6,083M events = 6,083M PUT units
    assert provisioned.monthly_usd == pytest.approx(
        7 * 730 * 0.015 + 200e6 * 730 / 24 / 1e6 * 0.014
    )
    # Data in is billed per record rounded up to a KB: a 300-byte event is 1,024 bytes in.
    events = 200e6 * 730 / 24
    gb_in, gb_out = events * 1024 / GIB, events * 300 / GIB
    assert on_demand.monthly_usd == pytest.approx(730 * 0.04 + gb_in * 0.08 + gb_out * 0.04)
    assert "billed as 1 KB" in on_demand.detail


def test_the_report_sums_its_lines_and_compares_the_seed(
    catalogue: Catalogue, usage: Usage
) -> None:
    report = price_inventory(seed_shape(), catalogue, usage)
    assert report.total_monthly_usd == pytest.approx(sum(x.monthly_usd for x in report.lines))
    assert sum(report.by_component.values()) == pytest.approx(report.total_monthly_usd)
    rows = {r["line"]: r for r in report.seed_rows}
    assert rows["MSK"]["stack_usd"] == pytest.approx(596.76)
    assert rows["MSK"]["delta_pct"] == pytest.approx(-25.4)
    month_events = 200e6 * 730 / 24
    assert report.per_million_events == pytest.approx(report.total_monthly_usd / month_events * 1e6)
    # one more month of raw events: on 3 replicas' gp3 and in 14 backup copies
    month_gb = 200e6 * 40 * 730 / 24 / GIB
    assert report.retention_month_usd == pytest.approx(month_gb * (3 * 0.08 + 14 * 0.023))


def test_an_unknown_cloud_type_is_named_not_priced(catalogue: Catalogue, usage: Usage) -> None:
    inv = Inventory(
        "u", (res("aws:dynamodb/table:Table", "t"),), config={"aws:region": "us-east-1"}
    )
    report = price_inventory(inv, catalogue, usage)
    assert report.unpriced == ("aws:dynamodb/table:Table",)
    assert any("aws:dynamodb/table:Table" in n for n in report.notes)


def test_backups_follow_the_stacks_retention_and_its_default(
    catalogue: Catalogue, usage: Usage
) -> None:
    from cost.traffic import DEFAULT_BACKUP_RETENTION_DAYS
    from stacks.config.model import StackConfig

    defaults = {f.name: f.default for f in __import__("dataclasses").fields(StackConfig)}
    assert defaults["backup_retention_days"] == DEFAULT_BACKUP_RETENTION_DAYS
    inv = seed_shape()
    week = Inventory(
        inv.stack, inv.resources, inv.exports, {**inv.config, "adpulse:backupRetentionDays": "7"}
    )
    stored_gb = 200e6 * (40 * 90 + 2 * 730) / GIB
    assert total(usage_lines(Pricing(week, catalogue, usage)), "daily full backups") == (
        pytest.approx(7 * stored_gb * 0.023)
    )


def test_a_comparator_without_prices_is_named_not_fatal(catalogue: Catalogue, usage: Usage) -> None:
    from cost.catalogue import Catalogue as Cat

    bare = Cat(
        catalogue.as_of,
        catalogue.sources,
        {k: v for k, v in catalogue.prices.items() if not k[0].startswith("kinesis/")},
    )
    report = price_inventory(seed_shape(), bare, usage)
    assert [a.replaces for a in report.alternatives] == ["clickhouse", "clickhouse"]
    assert any(
        n.startswith("alternative not shown: ") and "kinesis/shard" in n for n in report.notes
    )


def test_bytes_are_billed_by_the_binary_gb(catalogue: Catalogue) -> None:
    # 2^20 events a day of 1,024 B each: exactly 1 GB (2^30 bytes) a day, 730/24 GB a month
    gib_a_day = Usage(
        events_per_day=2**20,
        kafka_bytes_per_event=1024,
        clickhouse_bytes_per_event=1024,
        rollup_bytes_per_event=0,
        raw_retention_days=1,
        rollup_retention_days=0,
    )
    p = Pricing(seed_shape(), catalogue, gib_a_day)
    data = usage_lines(p)
    # S3 holds 1 GB (one day of raw events) in 14 daily copies at $0.023/GB-month
    assert total(data, "daily full backups") == pytest.approx(14 * 1 * 0.023)  # 0.322, not 0.346
    # 30.42 GB of messages a month, 2/3 crossing an AZ, billed out and in at $0.01/GB
    assert total(data, "producers to MSK") == pytest.approx(2 * 730 / 24 * 2 / 3 * 0.01)  # 0.41
    # 2 replicas fetch the 30.42 GB of parts a month, both directions
    assert total(data, "replica fetches") == pytest.approx(2 * 730 / 24 * 2 * 0.01)  # 1.22
    # the node's volume (sized in GiB) needs exactly 1 GB
    assert {f.what: f.needed_gb for f in fits(p)}["ClickHouse node"] == pytest.approx(1.0)
    # one more month of raw events: 30.42 GB on 3 replicas' gp3 and in 14 S3 copies
    report = price_inventory(seed_shape(), catalogue, gib_a_day)
    assert report.retention_month_usd == pytest.approx(730 / 24 * (3 * 0.08 + 14 * 0.023))  # 17.09
