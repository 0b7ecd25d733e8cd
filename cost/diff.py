"""`cost diff`: the stack priced as configured and with `--set` changes, line by line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cost.lines import Line
from cost.render import usd
from cost.report import Report

# Keys whose last parts name a type: a line keeps its slot when only the type changes.
_TYPED = (
    ("ec2/", "ec2/<type>"),
    ("msk/kafka.", "msk/<broker>"),
    ("elasticache/redis/", "elasticache/<node>"),
    ("rds/postgres/", "rds/<class>"),
    ("rds/gp3/storage/", "rds/gp3/storage"),
)


def slot(line: Line) -> tuple[str, str, str]:
    """What a line pays for, independent of the type or region it is priced at."""
    key = line.price_key
    for prefix, generic in _TYPED:
        if key.startswith(prefix):
            key = generic
            break
    # usage lines all belong to `usage` and name their flow in `slot` (four share the inter-AZ
    # price); a resource may have two gp3 volumes (root and data)
    what = line.slot
    if not what and (line.resource == "usage" or key.startswith("ebs/")):
        what = line.item.split(":")[0]
    return (line.component, line.resource, f"{key}|{what}")


def _slotted(lines: tuple[Line, ...]) -> dict[tuple[str, str, str], Line]:
    """Lines by slot; a slot seen again gets its occurrence number, so no line is ever dropped."""
    out: dict[tuple[str, str, str], Line] = {}
    for line in lines:
        component, resource, what = key = slot(line)
        n = 1
        while key in out:
            n += 1
            key = (component, resource, f"{what}#{n}")
        out[key] = line
    return out


@dataclass(frozen=True)
class Change:
    component: str
    resource: str
    before: Line | None
    after: Line | None

    @property
    def delta(self) -> float:
        return (self.after.monthly_usd if self.after else 0.0) - (
            self.before.monthly_usd if self.before else 0.0
        )

    @property
    def item(self) -> str:
        if self.before and self.after and self.before.item != self.after.item:
            return f"{self.before.item} -> {self.after.item}"
        return (self.after or self.before).item  # type: ignore[union-attr]


def changes(before: Report, after: Report) -> list[Change]:
    """Every line whose cost moved, in the order of `before` then lines only `after` has."""
    old = _slotted(before.lines)
    new = _slotted(after.lines)
    out = []
    for key in [*old, *(k for k in new if k not in old)]:
        a, b = old.get(key), new.get(key)
        change = Change(key[0], key[1], a, b)
        if abs(change.delta) >= 0.005:
            out.append(change)
    return out


def as_json(before: Report, after: Report, sets: list[str]) -> dict[str, Any]:
    return {
        "stack": before.stack,
        "sets": sets,
        "before_monthly_usd": round(before.total_monthly_usd, 2),
        "after_monthly_usd": round(after.total_monthly_usd, 2),
        "delta_monthly_usd": round(after.total_monthly_usd - before.total_monthly_usd, 2),
        "changes": [
            {
                "component": c.component,
                "resource": c.resource,
                "item": c.item,
                "before_usd": round(c.before.monthly_usd, 2) if c.before else None,
                "after_usd": round(c.after.monthly_usd, 2) if c.after else None,
                "delta_usd": round(c.delta, 2),
            }
            for c in changes(before, after)
        ],
    }


def _label(c: Change) -> str:
    return c.item if c.resource == "usage" else f"{c.resource}: {c.item}"


def _rows(before: Report, after: Report) -> list[tuple[str, str, str, str, str]]:
    return [
        (
            c.component,
            _label(c),
            usd(c.before.monthly_usd) if c.before else "-",
            usd(c.after.monthly_usd) if c.after else "-",
            f"{c.delta:+,.2f}",
        )
        for c in changes(before, after)
    ]


def as_markdown(before: Report, after: Report, sets: list[str]) -> str:
    delta = after.total_monthly_usd - before.total_monthly_usd
    share = f", {delta / before.total_monthly_usd * 100:+.1f}%" if before.total_monthly_usd else ""
    out = [
        f"### adpulse cost diff: stack `{before.stack}`, `{' '.join(sets)}`",
        "",
        f"**{usd(before.total_monthly_usd)} -> {usd(after.total_monthly_usd)} a month "
        f"({delta:+,.2f} USD{share})**",
        "",
        "| component | line | before | after | delta |",
        "|---|---|---:|---:|---:|",
    ]
    out += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in _rows(before, after)]
    return "\n".join(out) + "\n"


def as_table(before: Report, after: Report, sets: list[str]) -> str:
    delta = after.total_monthly_usd - before.total_monthly_usd
    out = [
        f"stack {before.stack} with {' '.join(sets)}: {usd(before.total_monthly_usd)} -> "
        f"{usd(after.total_monthly_usd)} a month ({delta:+,.2f})",
        "",
    ]
    for a, b, c, d, e in _rows(before, after):
        out.append(f"  {a:<13} {b}: {c} -> {d} ({e})")
    if not changes(before, after):
        out.append("  no line changes cost")
    return "\n".join(out) + "\n"
