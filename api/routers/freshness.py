"""`/api/v1/freshness`: how far behind ingest is.

Cached for `live_cache_ttl_s` (seconds) like `/live`, not the 60 s of historical panels, so
the dashboard's live card is never staler than the consumer's 5 s flush promise allows.
"""

from __future__ import annotations

from datetime import datetime

import orjson
from fastapi import APIRouter, Response

from api.deps import ContextDep
from api.errors import ERROR_RESPONSES
from api.queries import sql
from api.schemas import Freshness

router = APIRouter(prefix="/api/v1", tags=["live"], responses=ERROR_RESPONSES)


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
    cached, hit = await ctx.cache.fetch(key, ctx.ttls.live_s, compute, endpoint="freshness")
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
