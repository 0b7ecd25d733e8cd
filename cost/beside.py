"""`cost actual`: Cost Explorer's spend per month beside the estimate, group by group."""

from __future__ import annotations

from typing import Any

from cost.actual import GROUPS, OTHER, Actual, estimate_by_group
from cost.report import Report


def _groups(spent: Actual) -> list[str]:
    seen = {g for m in spent.months for g in m.by_group}
    return [*GROUPS, *([OTHER] if OTHER in seen else [])]


def as_json(spent: Actual, estimate: Report) -> dict[str, Any]:
    est = estimate_by_group(estimate.by_component)
    return {
        "stack": spent.stack,
        "estimate_monthly_usd": round(estimate.total_monthly_usd, 2),
        "estimate_by_group": {g: round(est.get(g, 0.0), 2) for g in _groups(spent)},
        "months": [
            {
                "start": m.start,
                "end": m.end,
                "estimated": m.estimated,
                "total_usd": round(m.total_usd, 2),
                "by_group": {g: round(v, 2) for g, v in m.by_group.items()},
                "by_service": {s: round(v, 2) for s, v in m.by_service.items()},
            }
            for m in spent.months
        ],
        "notes": list(spent.notes),
    }


def as_text(spent: Actual, estimate: Report) -> str:
    est = estimate_by_group(estimate.by_component)
    groups = _groups(spent)
    header = [
        "group",
        "estimate",
        *(m.start[:7] + ("*" if m.estimated else "") for m in spent.months),
    ]
    rows = [header]
    for g in groups:
        rows.append(
            [
                g,
                f"${est.get(g, 0.0):,.2f}",
                *(f"${m.by_group.get(g, 0.0):,.2f}" for m in spent.months),
            ]
        )
    rows.append(
        [
            "total",
            f"${estimate.total_monthly_usd:,.2f}",
            *(f"${m.total_usd:,.2f}" for m in spent.months),
        ]
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    out = [
        f"stack {spent.stack}: Cost Explorer by the Stack and Project tags, beside "
        f"`cost report` (* = month not final)",
        "",
    ]
    out += [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    out += [f"note: {n}" for n in spent.notes]
    return "\n".join(out) + "\n"
