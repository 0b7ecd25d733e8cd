"""`/api/v1/timeseries`: totals over time, per minute, hour or day."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import CampaignParam, ContextDep, FromParam, ToParam, checked
from api.errors import ERROR_RESPONSES
from api.queries.derived import fill
from api.queries.ranges import Granularity
from api.schemas import Point, Timeseries

router = APIRouter(prefix="/api/v1", tags=["metrics"], responses=ERROR_RESPONSES)

GranularityParam = Annotated[
    Granularity,
    Query(
        description="Bucket size. Ranges widen to whole buckets; at most 1 day by minute, "
        "62 days by hour and 732 days by day"
    ),
]


@router.get("/timeseries", response_model=Timeseries)
async def timeseries(
    ctx: ContextDep,
    from_: FromParam,
    to: ToParam,
    granularity: GranularityParam,
    campaign_id: CampaignParam = None,
) -> Response:
    """Counts and sums per bucket over [from, to), widened to whole buckets; empty ones are 0."""
    window = checked(from_, to, granularity.step, granularity.max_range)

    async def compute() -> bytes:
        rows = await ctx.counts.totals(
            window, endpoint="timeseries", group=granularity, campaign_id=campaign_id
        )
        points = [Point(t=t, **m) for t, m in fill(rows, window, granularity.step)]
        body = Timeseries(from_=window.start, to=window.end, granularity=granularity, points=points)
        return body.model_dump_json(by_alias=True).encode()

    question = {"from": window.start, "to": window.end, "granularity": granularity}
    return await ctx.answer("timeseries", question | {"campaign_id": campaign_id}, compute)
