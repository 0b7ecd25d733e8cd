"""The campaigns table: join, search, sort with nulls last, CSV. Pure."""

from __future__ import annotations

import csv
import io
import random

import numpy as np

from adpulse.metadata.campaigns import CampaignMeta
from api.queries import campaigns_table as table
from api.queries.campaigns_table import Order, SortKey

TOTALS = [(1, 100, 2, 0, 500, 0), (2, 0, 0, 0, 0, 0), (3, 50, 1, 1, 500, 900), (4, 10, 0, 0, 9, 0)]
META = {
    1: CampaignMeta(1, "Beta", "Acme"),
    3: CampaignMeta(3, "alpha", "Globex", "paused", 7),
    4: CampaignMeta(4, "=HYPERLINK()", "Evil"),
}


def ids(rows: list[table.Row]) -> list[int]:
    return [r["campaign_id"] for r in rows]


def test_join_fills_unknown_campaigns_with_nulls() -> None:
    rows = table.join(TOTALS, META)
    assert rows[1]["name"] is None and rows[1]["ctr"] is None
    assert rows[2]["status"] == "paused" and rows[2]["daily_budget_micros"] == 7


def test_sort_puts_nulls_last_both_ways_and_breaks_ties_by_id() -> None:
    rows = table.join(TOTALS, META)
    assert ids(table.sort_rows(rows, SortKey.NAME, Order.ASC)) == [4, 3, 1, 2]
    assert ids(table.sort_rows(rows, SortKey.NAME, Order.DESC)) == [1, 3, 4, 2]
    assert ids(table.sort_rows(rows, SortKey.SPEND_MICROS, Order.DESC)) == [1, 3, 4, 2]
    assert ids(table.sort_rows(rows, SortKey.CTR, Order.ASC)) == [4, 1, 3, 2]


def test_search_matches_name_advertiser_any_case_or_the_id() -> None:
    rows = table.join(TOTALS, META)
    assert ids(table.select(rows, q="ALPHA", sort=SortKey.CAMPAIGN_ID, order=Order.ASC)) == [3]
    assert ids(table.select(rows, q="acme", sort=SortKey.CAMPAIGN_ID, order=Order.ASC)) == [1]
    assert ids(table.select(rows, q="2", sort=SortKey.CAMPAIGN_ID, order=Order.ASC)) == [2]


def test_csv_quotes_formula_cells() -> None:
    text = table.to_csv(table.join(TOTALS, META))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[3]["name"] == "'=HYPERLINK()"
    assert rows[1]["name"] == "" and rows[1]["ctr"] == ""
    assert list(rows[0]) == list(table.CSV_COLUMNS)


def test_page_over_arrays_is_the_slice_of_select_for_every_sort_order_and_search() -> None:
    rng = random.Random(11)
    totals = []
    for campaign_id in sorted(rng.sample(range(1, 5000), 300)):
        counts = [rng.choice([0, 0, 1, 7, rng.randrange(1, 10**6)]) for _ in range(5)]
        totals.append((campaign_id, *counts))  # zeros: null ratios; small values: many ties
    meta = {
        c: CampaignMeta(c, rng.choice(["Alpha", "beta", "Gamma"]) + f" {c % 7}", f"Adv {c % 5}")
        for c, *_ in totals
        if c % 3
    }
    ids = np.asarray([t[0] for t in totals], dtype=np.int64)
    sums = np.asarray([t[1:] for t in totals], dtype=np.int64)
    for sort in SortKey:
        for order in Order:
            for q in (None, "alpha", "ADV 3", str(totals[5][0])):
                everything = table.select(table.join(totals, meta), q=q, sort=sort, order=order)
                for offset, limit in ((0, 50), (40, 7), (290, 50)):
                    got = table.page(
                        ids, sums, meta, q=q, sort=sort, order=order, offset=offset, limit=limit
                    )
                    assert got == (len(everything), everything[offset : offset + limit]), (
                        sort,
                        order,
                        q,
                    )
