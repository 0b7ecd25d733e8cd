"""`/api/v1/summary` and `/api/v1/timeseries`: totals and their course over time."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from api.deps import CampaignParam, ContextDep, FromParam, MinuteWindow, ToParam, checked
from api.errors import ERROR_RESPONSES, bad_parameter
from api.queries.derived import fill, metrics_from_row
from api.queries.ranges import EPOCH, Granularity
from api.schemas import Period, Point, Summary, Timeseries

router = APIRouter(prefix="/api/v1", tags=["metrics"], responses=ERROR_RESPONSES)

CompareParam = Annotated[
    Literal["previous"] | None,
    Query(description="previous: also answer for the period of equal length just before `from`"),
]
GranularityParam = Annotated[
    Granularity,
    Query(
        description="Bucket size. Ranges widen to whole buckets; at most 1 day by minute, "
        "62 days by hour and 732 days by day"
    ),
]


@router.get("/summary", response_model=Summary)
async def summary(
    ctx: ContextDep,
    window: MinuteWindow,
    campaign_id: CampaignParam = None,
    compare: CompareParam = None,
) -> Response:
    """Totals and ratios over [from, to), widened to whole minutes."""
    periods = [window, window.previous()] if compare else [window]
    if periods[-1].start < EPOCH:
        raise bad_parameter("compare", "the previous period would start before 1970-01-01")

    async def compute() -> bytes:
        if compare:
            now, before = await ctx.two_periods(
                window, periods[1], endpoint="summary", campaign_id=campaign_id
            )
        else:
            [now] = await ctx.totals(window, endpoint="summary", campaign_id=campaign_id)
        body = Summary(from_=window.start, to=window.end, **metrics_from_row(now))
        if compare:
            body.previous = Period(
                from_=periods[1].start, to=periods[1].end, **metrics_from_row(before)
            )
        return body.model_dump_json(by_alias=True, exclude_unset=True).encode()

    question = {"from": window.start, "to": window.end, "campaign_id": campaign_id}
    return await ctx.answer("summary", question | {"compare": compare}, compute)


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
        rows = await ctx.totals(
            window, endpoint="timeseries", group=granularity, campaign_id=campaign_id
        )
        points = [Point(t=t, **m) for t, m in fill(rows, window, granularity.step)]
        body = Timeseries(from_=window.start, to=window.end, granularity=granularity, points=points)
        return body.model_dump_json(by_alias=True).encode()

    question = {"from": window.start, "to": window.end, "granularity": granularity}
    return await ctx.answer("timeseries", question | {"campaign_id": campaign_id}, compute)
