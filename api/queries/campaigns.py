"""The campaigns table: join metrics with metadata, filter, sort, page, and CSV. Pure.

ClickHouse sums one row per active campaign (thousands, not millions); the join with names
from the metadata store and the sort by any column happen here, so sorting by name and
searching by advertiser work the same way as sorting by spend.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from adpulse.metadata.campaigns import CampaignMeta
from api.queries.derived import metrics_from_row


class SortKey(StrEnum):
    CAMPAIGN_ID = "campaign_id"
    NAME = "name"
    ADVERTISER = "advertiser"
    STATUS = "status"
    IMPRESSIONS = "impressions"
    CLICKS = "clicks"
    CONVERSIONS = "conversions"
    SPEND_MICROS = "spend_micros"
    REVENUE_MICROS = "revenue_micros"
    CTR = "ctr"
    CVR = "cvr"
    CPM = "cpm"
    CPA = "cpa"
    ROAS = "roas"


class Order(StrEnum):
    ASC = "asc"
    DESC = "desc"


_TEXT_KEYS = {SortKey.NAME, SortKey.ADVERTISER, SortKey.STATUS}
CSV_COLUMNS = (
    "campaign_id", "name", "advertiser", "status", "daily_budget_micros", "impressions", "clicks",
    "conversions", "spend_micros", "revenue_micros", "ctr", "cvr", "cpm", "cpa", "roas",
)  # fmt: skip
Row = dict[str, Any]


def join(totals: Iterable[Sequence[Any]], meta: Mapping[int, CampaignMeta]) -> list[Row]:
    """One row per (campaign_id, *COUNTS) result row, with its metadata or nulls."""
    rows = []
    for campaign_id, *counts in totals:
        known = meta.get(int(campaign_id))
        rows.append(
            {
                "campaign_id": int(campaign_id),
                "name": known.name if known else None,
                "advertiser": known.advertiser if known else None,
                "status": known.status if known else None,
                "daily_budget_micros": known.daily_budget_micros if known else None,
                **metrics_from_row(counts),
            }
        )
    return rows


def matches(row: Row, q: str) -> bool:
    """Case-insensitive substring of name or advertiser, or the exact campaign id."""
    needle = q.casefold()
    if q.isdigit() and int(q) == row["campaign_id"]:
        return True
    return any(needle in (row[k] or "").casefold() for k in ("name", "advertiser"))


def sort_rows(rows: Iterable[Row], sort: SortKey, order: Order) -> list[Row]:
    """Sort by one column; nulls last in either order, ties by campaign_id ascending."""
    base = sorted(rows, key=lambda r: int(r["campaign_id"]))
    present = [r for r in base if r[sort] is not None]
    missing = [r for r in base if r[sort] is None]
    if sort in _TEXT_KEYS:
        present.sort(key=lambda r: str(r[sort]).casefold(), reverse=order is Order.DESC)
    else:
        present.sort(key=lambda r: r[sort], reverse=order is Order.DESC)
    return present + missing


def select(rows: Iterable[Row], *, q: str | None, sort: SortKey, order: Order) -> list[Row]:
    """Rows matching `q` (all without it) in the asked order."""
    kept = [r for r in rows if q is None or matches(r, q)]
    return sort_rows(kept, sort, order)


def to_csv(rows: Iterable[Row]) -> str:
    """CSV with a header; text cells that a spreadsheet would run as a formula are quoted."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # OWASP CSV injection guard: names come from operators' files
    return value
