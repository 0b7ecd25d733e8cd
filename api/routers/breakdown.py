"""`/api/v1/breakdown`: metrics per country, device type or publisher."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import CampaignParam, ContextDep, HourWindow
from api.errors import ERROR_RESPONSES
from api.queries.derived import metrics_from_row
from api.queries.sql import Dimension
from api.schemas import Breakdown, BreakdownRow

router = APIRouter(prefix="/api/v1", tags=["metrics"], responses=ERROR_RESPONSES)


@router.get("/breakdown", response_model=Breakdown)
async def breakdown(
    ctx: ContextDep,
    window: HourWindow,
    by: Annotated[Dimension, Query(description="The dimension to split by")],
    campaign_id: CampaignParam = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most values returned")] = 100,
) -> Response:
    """Counts, sums and ratios per value of `by` over [from, to), widened to whole hours."""

    async def compute() -> bytes:
        rows = await ctx.counts.breakdown(window, by, campaign_id=campaign_id, limit=limit)
        body = Breakdown(
            from_=window.start,
            to=window.end,
            by=by,
            values_total=int(rows[0][6]) if rows else 0,
            rows=[BreakdownRow(value=str(r[0]), **metrics_from_row(r[1:6])) for r in rows],
        )
        return body.model_dump_json(by_alias=True).encode()

    question = {"from": window.start, "to": window.end, "by": by, "campaign_id": campaign_id}
    return await ctx.answer("breakdown", question | {"limit": limit}, compute)
