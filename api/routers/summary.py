"""`/api/v1/summary`: totals and ratios over a range, optionally beside the one before it."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from api.deps import CampaignParam, ContextDep, MinuteWindow
from api.errors import ERROR_RESPONSES, bad_parameter
from api.queries.derived import metrics_from_row
from api.queries.ranges import EPOCH
from api.schemas import Period, Summary

router = APIRouter(prefix="/api/v1", tags=["metrics"], responses=ERROR_RESPONSES)

CompareParam = Annotated[
    Literal["previous"] | None,
    Query(description="previous: also answer for the period of equal length just before `from`"),
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
            now, before = await ctx.counts.two_periods(
                window, periods[1], endpoint="summary", campaign_id=campaign_id
            )
        else:
            [now] = await ctx.counts.totals(window, endpoint="summary", campaign_id=campaign_id)
        body = Summary(from_=window.start, to=window.end, **metrics_from_row(now))
        if compare:
            body.previous = Period(
                from_=periods[1].start, to=periods[1].end, **metrics_from_row(before)
            )
        return body.model_dump_json(by_alias=True, exclude_unset=True).encode()

    question = {"from": window.start, "to": window.end, "campaign_id": campaign_id}
    return await ctx.answer("summary", question | {"compare": compare}, compute)
