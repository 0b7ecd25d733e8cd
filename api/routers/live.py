"""`/api/v1/live`: the last minutes, per minute.

Cached for `live_cache_ttl_s` (seconds), not the 60 s of historical panels, so the dashboard's
live card is never staler than the consumer's 5 s flush promise allows.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import ContextDep
from api.errors import ERROR_RESPONSES
from api.queries.derived import fill
from api.queries.ranges import MINUTE, Granularity, TimeRange, floor
from api.schemas import Live, Point

router = APIRouter(prefix="/api/v1", tags=["live"], responses=ERROR_RESPONSES)
LIVE_MINUTES = 15


@router.get("/live", response_model=Live)
async def live(ctx: ContextDep) -> Response:
    """The last 15 minutes per minute, the current (unfinished) minute last."""
    end = floor(ctx.now(), MINUTE) + MINUTE
    window = TimeRange(end - LIVE_MINUTES * MINUTE, end)

    async def compute() -> bytes:
        # Not from the rollups in memory: they may be a minute old, live promises 5 s.
        rows = await ctx.counts.totals(window, endpoint="live", group=Granularity.MINUTE, hot=False)
        points = [Point(t=t, **m) for t, m in fill(rows, window, MINUTE)]
        body = Live(from_=window.start, to=window.end, points=points)
        return body.model_dump_json(by_alias=True).encode()

    question = {"from": window.start, "to": window.end}
    return await ctx.answer(
        "live",
        question,
        compute,
        ttl_s=ctx.ttls.live_s,
        same_for_same_target=False,  # the window moves with the clock
    )
