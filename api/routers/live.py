"""`/api/v1/live` and `/api/v1/freshness`: the last minutes, and how far behind ingest is.

Both are cached for `live_cache_ttl_s` (seconds), not the 60 s of historical panels, so the
dashboard's live card is never staler than the consumer's 5 s flush promise allows.
"""

from __future__ import annotations

from datetime import datetime

import orjson
from fastapi import APIRouter, Response

from api.deps import ContextDep
from api.errors import ERROR_RESPONSES
from api.queries import sql
from api.queries.derived import fill
from api.queries.ranges import MINUTE, Granularity, TimeRange, floor
from api.schemas import Freshness, Live, Point

router = APIRouter(prefix="/api/v1", tags=["live"], responses=ERROR_RESPONSES)
LIVE_MINUTES = 15


@router.get("/live", response_model=Live)
async def live(ctx: ContextDep) -> Response:
    """The last 15 minutes per minute, the current (unfinished) minute last."""
    end = floor(ctx.now(), MINUTE) + MINUTE
    window = TimeRange(end - LIVE_MINUTES * MINUTE, end)

    async def compute() -> bytes:
        # Not from the rollups in memory: they may be a minute old, live promises 5 s.
        rows = await ctx.totals(window, endpoint="live", group=Granularity.MINUTE, hot=False)
        points = [Point(t=t, **m) for t, m in fill(rows, window, MINUTE)]
        body = Live(from_=window.start, to=window.end, points=points)
        return body.model_dump_json(by_alias=True).encode()

    question = {"from": window.start, "to": window.end}
    return await ctx.answer(
        "live",
        question,
        compute,
        ttl_s=ctx.settings.live_cache_ttl_s,
        same_for_same_target=False,  # the window moves with the clock
    )


@router.get("/freshness", response_model=Freshness)
async def freshness(ctx: ContextDep) -> Response:
    """The newest stored event_time and the lag behind it now, in seconds."""

    async def compute() -> bytes:
        [(newest, events)] = await ctx.runner.rows(
            sql.newest_event(ctx.database), endpoint="freshness"
        )
        return orjson.dumps({"newest": newest.isoformat() if events else None})

    # The lag is computed per request from the cached newest time, so it stays current.
    key = ctx.cache_key("freshness", {})
    cached, hit = await ctx.cache.fetch(
        key, ctx.settings.live_cache_ttl_s, compute, endpoint="freshness"
    )
    raw = orjson.loads(cached)["newest"]
    newest = datetime.fromisoformat(raw) if raw else None
    now = ctx.now()
    body = Freshness(
        newest_event_time=newest,
        lag_seconds=round((now - newest).total_seconds(), 3) if newest else None,
        checked_at=now,
    )
    return Response(
        body.model_dump_json().encode(),
        media_type="application/json",
        headers={"X-Cache": "HIT" if hit else "MISS"},
    )
