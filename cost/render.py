"""The report as a table, Markdown or CSV; JSON is `report.as_json`. All read the same numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from cost.lines import COMPONENTS
from cost.report import SEED_BUDGET, SEED_TOTAL, Report

CSV_HEADER = (
    "component",
    "resource",
    "item",
    "quantity",
    "unit",
    "unit_usd",
    "monthly_usd",
    "price_key",
    "region",
    "source",
    "basis",
)


def usd(value: float) -> str:
    return f"${value:,.2f}"


def per_million(report: Report) -> str:
    """USD per million events, or n/a for an idle stack (no events share its fixed cost)."""
    value = report.per_million_events
    return "n/a" if value is None else usd(value)


def _idle(report: Report) -> str:
    """Said of a stack priced at no events: all of its total is fixed cost."""
    if report.events_per_month:
        return ""
    return " (no events: the total is the idle stack's fixed cost)"


def _ordered(report: Report) -> list[str]:
    by = report.by_component
    return [c for c in COMPONENTS if c in by] + sorted(set(by) - set(COMPONENTS))


def as_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for x in report.lines:
        writer.writerow(
            (
                x.component,
                x.resource,
                x.item,
                f"{x.quantity:.4f}",
                x.unit,
                f"{x.unit_usd:g}",
                f"{x.monthly_usd:.2f}",
                x.price_key,
                x.region,
                x.source,
                x.basis,
            )
        )
    return out.getvalue()


def _seed_rows(report: Report) -> list[tuple[str, str, str, str]]:
    rows = [
        (r["line"], usd(r["seed_usd"]), usd(r["stack_usd"]), f"{r['delta_pct']:+.1f}%")
        for r in report.seed_rows
    ]
    three = sum(r["stack_usd"] for r in report.seed_rows)
    rows.append(
        ("the three lines", usd(SEED_TOTAL), usd(three), f"{(three / SEED_TOTAL - 1) * 100:+.1f}%")
    )
    rows.append(
        (
            "everything else (RDS, ALB, NAT, transfer, ...)",
            "not counted",
            usd(report.total_monthly_usd - three),
            "",
        )
    )
    rows.append(("total", usd(SEED_TOTAL), usd(report.total_monthly_usd), ""))
    return rows


def as_markdown(report: Report) -> str:
    c = report.catalogue
    out = [
        f"### adpulse cost: stack `{report.stack}` in {report.region}: "
        f"**{usd(report.total_monthly_usd)}/month**",
        "",
        f"{report.usage.events_per_day:,.0f} events/day{_idle(report)}; {per_million(report)} per "
        f"million events; one more month of raw retention {usd(report.retention_month_usd)}"
        f"/month. Prices: {c.origin} catalogue as of {c.as_of}, {c.hours_per_month:g} h/month.",
        "",
        "| component | monthly |",
        "|---|---:|",
    ]
    out += [f"| {k} | {usd(report.by_component[k])} |" for k in _ordered(report)]
    out += ["", "| seed line | seed | this stack | delta |", "|---|---:|---:|---:|"]
    out += [f"| {a} | {b} | {cc} | {d} |" for a, b, cc, d in _seed_rows(report)]
    if report.budget is not None:
        verdict = "**over budget**" if report.over_budget else "within budget"
        out += ["", f"Budget {usd(report.budget)}: {verdict}."]
    warnings = [f.warning for f in report.fits if not f.fits]
    out += ["", *(f"> **capacity:** {w}" for w in warnings)] if warnings else []
    return "\n".join(out) + "\n"


def _table(rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def grouped(report: Report, component: str) -> dict[tuple[str, str, float, str], tuple[int, float]]:
    """A component's lines with identical item and price folded into one (23 alarms: one row)."""
    rows: dict[tuple[str, str, float, str], tuple[int, float]] = {}
    for x in report.lines:
        if x.component == component:
            key = (x.item, x.unit, x.unit_usd, x.basis)
            n, qty = rows.get(key, (0, 0.0))
            rows[key] = (n + 1, qty + x.quantity)
    return rows


def as_table(report: Report) -> str:
    c = report.catalogue
    out = [
        f"adpulse cost report: stack {report.stack}, {report.region}, prices as of {c.as_of} "
        f"({c.origin} catalogue), {c.hours_per_month:g} h a month",
        "",
    ]
    for component in _ordered(report):
        out.append(f"{component}: {usd(report.by_component[component])}")
        rows = [
            (
                f"  {item}" + (f" (x{n})" if n > 1 else ""),
                f"{qty:,.2f} {unit}",
                f"x ${unit_usd:g}",
                usd(qty * unit_usd),
                basis,
            )
            for (item, unit, unit_usd, basis), (n, qty) in grouped(report, component).items()
        ]
        out += _table(rows, {1, 2, 3})
        out.append("")
    out.append(f"TOTAL {usd(report.total_monthly_usd)} a month")
    out.append(
        f"  {per_million(report)} per million events at "
        f"{report.usage.events_per_day:,.0f} events/day{_idle(report)}; one more month of raw "
        f"retention adds {usd(report.retention_month_usd)}/month"
    )
    if report.budget is not None:
        state = "OVER" if report.over_budget else "within"
        out.append(f"  budget {usd(report.budget)}: {state}")
    out += ["", f"against the seed's figures (its budget {usd(SEED_BUDGET)}):"]
    out += _table(
        [
            ("  line", "seed", "this stack", "delta"),
            *((f"  {a}", b, cc, d) for a, b, cc, d in _seed_rows(report)),
        ],
        {1, 2, 3},
    )
    out += ["", "capacity (steady state):"]
    for f in report.fits:
        mark = "ok  " if f.fits else "WARN"
        out.append(
            f"  {mark} {f.what}: needs {f.needed_gb:,.0f} GB of {f.usable_gb:,.0f} GB "
            f"usable ({f.volume_gb:,.0f} GB volume); {f.basis}"
        )
        if not f.fits:
            out.append(f"       {f.warning}")
    out += ["", "alternatives:"]
    for a in report.alternatives:
        out.append(
            f"  {a.name}: {usd(a.monthly_usd)} instead of {a.replaces} "
            f"{usd(a.versus_usd)}; {a.detail}"
        )
    out += ["", "assumptions (--set usage.KEY=VALUE):"]
    out += _table([(f"  {k}", f"{v:,.6g}", why) for k, v, why in report.usage.as_rows()], {1})
    out += ["", "notes:", *(f"  - {n}" for n in report.notes)]
    sources = sorted({x.source for x in report.lines})
    out += ["", "sources:"]
    for sid in sources:
        s = c.sources.get(sid)
        out.append(f"  [{sid}] {s.title}, {s.date}: {s.url}" if s else f"  [{sid}]")
    return "\n".join(out) + "\n"


FORMATS = {"table": as_table, "markdown": as_markdown, "csv": as_csv}
