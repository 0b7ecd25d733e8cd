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

import numpy as np

from adpulse.metadata.campaigns import CampaignMeta
from api.queries.derived import RATIOS, metrics_from_row, ratio


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
Array = np.ndarray[Any, Any]


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


_COUNT_INDEX = {
    SortKey.IMPRESSIONS: 0,
    SortKey.CLICKS: 1,
    SortKey.CONVERSIONS: 2,
    SortKey.SPEND_MICROS: 3,
    SortKey.REVENUE_MICROS: 4,
}


def page(
    ids: Array,
    sums: Array,
    meta: Mapping[int, CampaignMeta],
    *,
    q: str | None,
    sort: SortKey,
    order: Order,
    offset: int,
    limit: int,
) -> tuple[int, list[Row]]:
    """(how many campaigns match, the rows of one page), as `select(join(...))` would give
    them, from `ids` (ascending) and their (campaigns x 5) `sums`. Only the page's rows are
    built: a page shows 50 campaigns out of thousands, and building, deriving and sorting a
    dict per campaign cost 5 ms per answer."""
    if q is not None:
        keep = [i for i, c in enumerate(ids.tolist()) if matches(_search_fields(c, meta), q)]
        ids, sums = ids[keep], sums[keep]
    if sort is SortKey.CAMPAIGN_ID or sort in _COUNT_INDEX:
        column = ids if sort is SortKey.CAMPAIGN_ID else sums[:, _COUNT_INDEX[sort]]
        # Ties keep campaign_id ascending in both orders, as sort_rows does.
        ranked = np.lexsort((ids, -column if order is Order.DESC else column)).tolist()
    else:
        values = _sort_values(ids, sums, meta, sort)
        present = [i for i, v in enumerate(values) if v is not None]
        present.sort(key=values.__getitem__, reverse=order is Order.DESC)
        ranked = present + [i for i, v in enumerate(values) if v is None]
    shown = ranked[offset : offset + limit]
    chosen = zip(ids[shown].tolist(), sums[shown].tolist(), strict=True)
    rows = [(c, *counts) for c, counts in chosen]
    return len(ranked), join(rows, meta)


def _sort_values(
    ids: Array, sums: Array, meta: Mapping[int, CampaignMeta], sort: SortKey
) -> list[Any]:
    if sort in _TEXT_KEYS:
        texts = [getattr(meta.get(c), sort.value, None) for c in ids.tolist()]
        return [None if t is None else str(t).casefold() for t in texts]
    numerator_denominator = RATIOS[sort.value]
    return [ratio(*numerator_denominator(*counts)) for counts in sums.tolist()]


def _search_fields(campaign_id: int, meta: Mapping[int, CampaignMeta]) -> Row:
    known = meta.get(campaign_id)
    return {
        "campaign_id": campaign_id,
        "name": known.name if known else None,
        "advertiser": known.advertiser if known else None,
    }


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
