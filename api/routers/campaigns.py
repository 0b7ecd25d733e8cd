"""`/api/v1/campaigns` and `/api/v1/export.csv`: one row per active campaign, with metadata."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.context import ApiContext
from api.deps import ContextDep, MinuteWindow
from api.errors import ERROR_RESPONSES
from api.queries import campaigns_table as table
from api.queries.campaigns_table import Order, SortKey
from api.queries.ranges import TimeRange
from api.schemas import CampaignRow, Campaigns

router = APIRouter(prefix="/api/v1", tags=["campaigns"], responses=ERROR_RESPONSES)

SortParam = Annotated[SortKey, Query(description="Column to sort by; nulls always come last")]
OrderParam = Annotated[Order, Query(description="asc or desc; ties go by campaign_id ascending")]
SearchParam = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=100,
        # Never reaches SQL, yet refuses what only an injection attempt would send.
        pattern=r"^[^\x00-\x1f\x7f'\";=*\\%<>(){}\[\]`$|]+$",
        description="Keep campaigns whose name or advertiser contains this (any case), or whose "
        "id it is. No quotes, ; = * \\ % < > ( ) { } [ ] ` $ | or control characters",
    ),
]


class CsvResponse(Response):
    media_type = "text/csv"


async def _rows(
    ctx: ApiContext, window: TimeRange, q: str | None, sort: SortKey, order: Order, endpoint: str
) -> list[table.Row]:
    ids, sums = await ctx.counts.campaign_totals(window, endpoint=endpoint)
    rows = [(c, *counts) for c, counts in zip(ids.tolist(), sums.tolist(), strict=True)]
    meta = await ctx.campaign_meta.table()
    return table.select(table.join(rows, meta), q=q, sort=sort, order=order)


def _question(window: TimeRange, q: str | None, sort: SortKey, order: Order) -> dict[str, object]:
    return {"from": window.start, "to": window.end, "q": q, "sort": sort, "order": order}


@router.get("/campaigns", response_model=Campaigns)
async def campaigns(
    ctx: ContextDep,
    window: MinuteWindow,
    sort: SortParam = SortKey.SPEND_MICROS,
    order: OrderParam = Order.DESC,
    limit: Annotated[int, Query(ge=1, le=500, description="Rows per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip")] = 0,
    q: SearchParam = None,
) -> Response:
    """Campaigns with events in [from, to), widened to whole minutes: metadata and metrics."""

    async def compute() -> bytes:
        ids, sums = await ctx.counts.campaign_totals(window, endpoint="campaigns")
        meta = await ctx.campaign_meta.table()
        total, rows = table.page(
            ids, sums, meta, q=q, sort=sort, order=order, offset=offset, limit=limit
        )
        body = Campaigns(
            from_=window.start,
            to=window.end,
            total=total,
            limit=limit,
            offset=offset,
            rows=[CampaignRow(**row) for row in rows],
        )
        return body.model_dump_json(by_alias=True).encode()

    question = _question(window, q, sort, order) | {"limit": limit, "offset": offset}
    return await ctx.answer("campaigns", question, compute)


@router.get(
    "/export.csv",
    response_class=CsvResponse,
    responses={200: {"description": "The campaigns table as CSV, every matching row"}},
)
async def export_csv(
    ctx: ContextDep,
    window: MinuteWindow,
    sort: SortParam = SortKey.SPEND_MICROS,
    order: OrderParam = Order.DESC,
    q: SearchParam = None,
) -> Response:
    """The campaigns table for [from, to) as CSV with a header row, without paging."""

    async def compute() -> bytes:
        return table.to_csv(await _rows(ctx, window, q, sort, order, "export")).encode()

    name = f"adpulse-campaigns-{window.start:%Y%m%dT%H%M}-{window.end:%Y%m%dT%H%M}.csv"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    return await ctx.answer(
        "export",
        _question(window, q, sort, order),
        compute,
        media_type="text/csv",
        headers=disposition,
    )
