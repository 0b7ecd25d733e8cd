"""`cost diff` pairs each line of one shape with the same line of the other (hand-built shapes)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cost import diff
from cost.catalogue import Catalogue
from cost.report import price_inventory
from cost.usage import Usage
from stacks.inventory import Export, Inventory

from .conftest import seed_shape

INTER_AZ = (
    "inter-AZ: producers to MSK",
    "inter-AZ: MSK to the consumer",
    "inter-AZ: consumer inserts into ClickHouse",
    "inter-AZ: ClickHouse replica fetches",
)


def two_replicas() -> Inventory:
    """The seed shape with one replica fewer: ch-3, its volume and its attachment gone."""
    inv = seed_shape()
    return Inventory(
        inv.stack,
        tuple(r for r in inv.resources if not r.name.startswith("ch-3")),
        (
            Export("clickhouse_topology", '{"shards": [["ch-1", "ch-2"]]}', False),
            *(e for e in inv.exports if e.name != "clickhouse_topology"),
        ),
        inv.config,
    )


def test_every_line_has_its_own_slot(catalogue: Catalogue, usage: Usage) -> None:
    report = price_inventory(seed_shape(), catalogue, usage)
    inter_az = [x for x in report.lines if x.price_key == "transfer/inter-az"]
    assert len(inter_az) == 4
    slots = [diff.slot(x) for x in report.lines]
    assert len(set(slots)) == len(slots), sorted(s for s in slots if slots.count(s) > 1)


def test_a_diff_shows_each_inter_az_flow_that_moved(catalogue: Catalogue, usage: Usage) -> None:
    before = price_inventory(seed_shape(), catalogue, usage)
    after = price_inventory(two_replicas(), catalogue, replace(usage, cross_az_share=0.5))
    moved = {c.item.split(" (")[0]: c for c in diff.changes(before, after)}
    # all four flows exist in both shapes and all four moved: each is its own change
    assert set(INTER_AZ) <= set(moved)
    gib_month = 200e6 * 730 / 24 / 2**30  # GB a month at one byte an event
    kafka = 2 * 300 * gib_month * 0.01  # both directions at $0.01/GB, x the share
    assert moved["inter-AZ: producers to MSK"].delta == pytest.approx(kafka * (0.5 - 2 / 3))
    assert moved["inter-AZ: MSK to the consumer"].delta == pytest.approx(kafka * (0.5 - 2 / 3))
    assert moved["inter-AZ: consumer inserts into ClickHouse"].delta == pytest.approx(
        kafka * (0.5 - 2 / 3)
    )
    # 42 B of parts an event, fetched by 1 other replica instead of 2
    parts = 2 * 42 * gib_month * 0.01
    assert moved["inter-AZ: ClickHouse replica fetches"].delta == pytest.approx(parts * (1 - 2))
    # and the changes add up to the total: no line is lost to another's slot
    assert sum(c.delta for c in diff.changes(before, after)) == pytest.approx(
        after.total_monthly_usd - before.total_monthly_usd
    )
    table = diff.as_table(before, after, ["usage.cross_az_share=0.5"])
    assert all(flow in table for flow in INTER_AZ)


def test_a_usage_change_alone_is_not_no_change(catalogue: Catalogue, usage: Usage) -> None:
    before = price_inventory(seed_shape(), catalogue, usage)
    after = price_inventory(seed_shape(), catalogue, replace(usage, cross_az_share=0.5))
    changed = diff.changes(before, after)
    assert [c.item.split(" (")[0] for c in changed] == list(INTER_AZ[:3])
    assert sum(c.delta for c in changed) == pytest.approx(
        after.total_monthly_usd - before.total_monthly_usd
    )
    assert "no line changes cost" not in diff.as_table(before, after, ["x"])


def test_an_idle_stack_diffs_without_a_percentage(catalogue: Catalogue, usage: Usage) -> None:
    empty = Inventory("e", (), config={"aws:region": "us-east-1"})
    before = price_inventory(empty, catalogue, replace(usage, events_per_day=0))
    after = price_inventory(seed_shape(), catalogue, usage)
    assert before.total_monthly_usd == 0
    text = diff.as_markdown(before, after, ["x"])
    assert f"(+{after.total_monthly_usd:,.2f} USD)**" in text
