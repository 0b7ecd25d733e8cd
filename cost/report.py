"""`cost report`: the stack's program under mocks, priced line by line (the shell around it).

`build_report` runs the same inventory as `adpulse stack check` (stacks.inventory), prices it
with the catalogue and the usage assumptions, and adds the seed's lines, the capacity check and
the managed alternatives. Everything below the inventory is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from adpulse.errors import AdpulseError
from cost.capacity import Fit, fits
from cost.catalogue import Catalogue, CatalogueError
from cost.compare import Alternative, clickhouse_cloud, kinesis
from cost.lines import COMPONENTS, Line
from cost.resources import Pricing, resource_lines
from cost.traffic import (
    GIB,
    NOT_BILLED,
    backup_copies,
    replicas_per_shard,
    stored_bytes,
    usage_lines,
)
from cost.usage import Usage, checked_events_per_day
from stacks.inventory import Inventory

# The seed's own figures: its three lines, its total and its budget (the project brief).
SEED_LINES = (
    ("ClickHouse", "clickhouse", 1400.0),
    ("MSK", "kafka", 800.0),
    ("Redis", "cache", 200.0),
)
SEED_TOTAL = 2400.0
SEED_BUDGET = 8000.0
OVER_BUDGET_EXIT = 3  # `cost report --budget` over budget: not 0, 1 (error) or 2 (usage)


class SetError(AdpulseError):
    """A `--set` that is not KEY=VALUE; the message shows the three kinds of key."""


@dataclass(frozen=True)
class Sets:
    """`--set` pairs split by kind: stack config, usage assumptions, prices."""

    config: dict[str, str] = field(default_factory=dict)  # full keys: adpulse:x, aws:region
    usage: dict[str, str] = field(default_factory=dict)
    prices: dict[str, float] = field(default_factory=dict)


def parse_sets(pairs: list[str]) -> Sets:
    out = Sets()
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SetError(
                f"--set {pair!r} is not KEY=VALUE; keys are stack config (clickhouseInstanceType, "
                "aws:region, ...), usage.KEY (see the assumptions) or price.KEY (a catalogue key)"
            )
        if key.startswith("usage."):
            out.usage[key.removeprefix("usage.")] = value
        elif key.startswith("price."):
            try:
                out.prices[key.removeprefix("price.")] = float(value)
            except ValueError:
                raise SetError(f"--set {key} must be a number in USD, not {value!r}") from None
        else:
            out.config[key if ":" in key else f"adpulse:{key}"] = value
    return out


@dataclass(frozen=True)
class Report:
    stack: str
    region: str
    catalogue: Catalogue
    usage: Usage
    lines: tuple[Line, ...]
    fits: tuple[Fit, ...]
    alternatives: tuple[Alternative, ...]
    unpriced: tuple[str, ...]  # cloud resource types no rule knows
    notes: tuple[str, ...]
    retention_month_usd: float  # one more month of raw events: gp3 on every replica + backups
    budget: float | None = None
    warnings: tuple[str, ...] = ()  # for stderr: live prices unavailable, ...

    @property
    def total_monthly_usd(self) -> float:
        return sum(line.monthly_usd for line in self.lines)

    @property
    def by_component(self) -> dict[str, float]:
        totals = {c: 0.0 for c in COMPONENTS}
        for line in self.lines:
            totals[line.component] = totals.get(line.component, 0.0) + line.monthly_usd
        return {c: v for c, v in totals.items() if v}

    @property
    def events_per_month(self) -> float:
        return self.usage.events_per_day * self.catalogue.hours_per_month / 24

    @property
    def per_million_events(self) -> float | None:
        """USD per million events; None for an idle stack, whose fixed cost no event shares."""
        if self.events_per_month <= 0:
            return None
        return self.total_monthly_usd / (self.events_per_month / 1e6)

    @property
    def seed_rows(self) -> list[dict[str, Any]]:
        by = self.by_component
        rows = []
        for label, component, seed in SEED_LINES:
            ours = by.get(component, 0.0)
            rows.append(
                {
                    "line": label,
                    "component": component,
                    "seed_usd": seed,
                    "stack_usd": round(ours, 2),
                    "delta_pct": round((ours / seed - 1) * 100, 1),
                }
            )
        return rows

    @property
    def over_budget(self) -> bool:
        return self.budget is not None and self.total_monthly_usd > self.budget


def build_report(
    stack: str,
    *,
    sets: Sets | None = None,
    events_per_day: float | None = None,
    region: str | None = None,
    budget: float | None = None,
    catalogue: Catalogue | None = None,
    config_dir: Path | None = None,
    inventory: Inventory | None = None,
    live_prices: bool = False,
) -> Report:
    """Price `stack`: collect its inventory under mocks (unless given) and price every line.

    `live_prices` reprices the lines from the AWS Price List; when that fails the bundled
    catalogue stands and the report carries a warning."""
    from cost import catalogue as cat
    from cost.usage import defaults, with_sets
    from stacks.inventory import ROOT, collect_with_config, read_stack_file

    sets = sets or Sets()
    # usage first: a bad value is refused before the program runs under mocks (seconds)
    usage = with_sets(defaults(), sets.usage)
    if events_per_day is not None:
        usage = replace(usage, events_per_day=checked_events_per_day(events_per_day))
    config = dict(sets.config)
    if region:
        config["aws:region"] = region
    if inventory is None:
        stack_file = read_stack_file(stack, config_dir or ROOT)
        stack_file = replace(stack_file, config={**stack_file.config, **config})
        inventory = collect_with_config(stack, stack_file)
    catalogue = (catalogue or cat.load()).with_overrides(sets.prices)
    report = price_inventory(inventory, catalogue, usage, budget)
    if not live_prices:
        return report
    from cost.refresh import live

    fresh, warnings = live({x.price_key for x in report.lines}, report.region, catalogue)
    repriced = price_inventory(inventory, fresh.with_overrides(sets.prices), usage, budget)
    return replace(repriced, warnings=tuple(warnings), notes=(*repriced.notes, *warnings))


def price_inventory(
    inventory: Inventory, catalogue: Catalogue, usage: Usage, budget: float | None = None
) -> Report:
    """The pure part: price an inventory with a catalogue and usage."""
    p = Pricing(inventory, catalogue, usage)
    lines, unpriced = resource_lines(p)
    lines.extend(usage_lines(p))
    by = {c: 0.0 for c in COMPONENTS}
    for line in lines:
        by[line.component] += line.monthly_usd
    alternatives: list[Alternative] = []
    skipped: list[str] = []
    for compare, versus in ((clickhouse_cloud, by["clickhouse"]), (kinesis, by["kafka"])):
        try:
            alternatives.extend(compare(p, versus))
        except CatalogueError as exc:  # a comparator is context, not a line: name the gap
            skipped.append(f"alternative not shown: {exc}")
    notes = [
        *inventory.notes,
        *(f"not billed: {what}" for what in NOT_BILLED),
        "not priced: RDS backup storage within the free allowance (100% of the allocated "
        "storage), API calls to Secrets Manager, KMS and CloudWatch (cents), SNS alarm "
        "e-mails, AWS's free tier and the first 100 GB of internet egress",
        f"steady state: ClickHouse holds {stored_bytes(p) / GIB:,.0f} GB (one replica of every "
        "shard) once the raw and rollup retentions are full",
        "GB is AWS's billing GB, 2^30 bytes (a GiB): bytes per event become billed GB at "
        "1,073,741,824 bytes each, and volume sizes are GiB",
    ]
    notes.extend(skipped)
    low = sorted(
        {
            x.price_key
            for x in lines
            if (found := catalogue.prices.get((x.price_key, x.region)))
            and found.note.startswith("low confidence")
        }
    )
    if low:
        notes.append(
            f"low-confidence prices (a third-party table, not the AWS Price List; "
            f"`adpulse cost catalogue refresh` replaces them): {', '.join(low)}"
        )
    if unpriced:
        notes.append(f"no pricing rule for: {', '.join(unpriced)} (not in the total)")
    return Report(
        inventory.stack,
        p.region,
        catalogue,
        usage,
        tuple(lines),
        tuple(fits(p)),
        tuple(alternatives),
        tuple(unpriced),
        tuple(notes),
        retention_month(p),
        budget,
    )


def retention_month(p: Pricing) -> float:
    """What keeping one more month of raw events costs: gp3 on every replica, and S3 backups."""
    _, replicas = replicas_per_shard(p)
    month_gb = p.usage.events_per_day * p.usage.clickhouse_bytes_per_event * p.hours / 24 / GIB
    gp3 = p.catalogue.price("ebs/gp3/storage", p.region).usd
    s3 = p.catalogue.price("s3/standard/storage", p.region).usd
    return month_gb * (replicas * gp3 + backup_copies(p) * s3)


def as_json(report: Report) -> dict[str, Any]:
    """The report as a JSON document (cost/report.schema.json)."""
    c = report.catalogue
    per_million = report.per_million_events
    return {
        "stack": report.stack,
        "region": report.region,
        "currency": "USD",
        "total_monthly_usd": round(report.total_monthly_usd, 2),
        "by_component": {k: round(v, 2) for k, v in report.by_component.items()},
        "per_million_events_usd": None if per_million is None else round(per_million, 4),
        "retention_month_usd": round(report.retention_month_usd, 2),
        "events_per_day": report.usage.events_per_day,
        "budget_usd": report.budget,
        "over_budget": report.over_budget,
        "seed": {
            "lines": report.seed_rows,
            "total_usd": SEED_TOTAL,
            "budget_usd": SEED_BUDGET,
            "stack_three_lines_usd": round(sum(r["stack_usd"] for r in report.seed_rows), 2),
            "beyond_seed_usd": round(
                report.total_monthly_usd - sum(r["stack_usd"] for r in report.seed_rows), 2
            ),
        },
        "lines": [
            {
                "component": x.component,
                "resource": x.resource,
                "item": x.item,
                "quantity": round(x.quantity, 4),
                "unit": x.unit,
                "unit_usd": x.unit_usd,
                "monthly_usd": round(x.monthly_usd, 2),
                "price_key": x.price_key,
                "region": x.region,
                "source": x.source,
                "basis": x.basis,
            }
            for x in report.lines
        ],
        "capacity": [
            {
                "what": f.what,
                "needed_gb": round(f.needed_gb, 1),
                "volume_gb": f.volume_gb,
                "usable_gb": round(f.usable_gb, 1),
                "fits": f.fits,
                "basis": f.basis,
                "warning": f.warning,
            }
            for f in report.fits
        ],
        "alternatives": [
            {
                "name": a.name,
                "replaces": a.replaces,
                "monthly_usd": round(a.monthly_usd, 2),
                "stack_component_usd": round(a.versus_usd, 2),
                "detail": a.detail,
                "sources": list(a.sources),
            }
            for a in report.alternatives
        ],
        "assumptions": [{"key": k, "value": v, "why": why} for k, v, why in report.usage.as_rows()],
        "catalogue": {
            "origin": c.origin,
            "as_of": c.as_of,
            "hours_per_month": c.hours_per_month,
            "sources": {
                s.id: {"title": s.title, "url": s.url, "date": s.date}
                for s in c.sources.values()
                if s.id
                in {x.source for x in report.lines}
                | {s for a in report.alternatives for s in a.sources}
            },
        },
        "notes": list(report.notes),
    }
