"""`/healthz` (the process runs), `/readyz` (it can answer) and `/metrics` (Prometheus).

These routes need no API key: load balancers and Prometheus call them.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from adpulse.clickhouse.client import QueryError
from api.deps import ContextDep
from api.errors import ApiError
from api.queries.sql import Query
from api.schemas import Health, Readiness

router = APIRouter(tags=["health"])
_PROBE_TIMEOUT_S = 2.0


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up and serving HTTP."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(ctx: ContextDep) -> JSONResponse:
    """ClickHouse and the cache answer. A down cache reports `degraded` with 200.

    The API still answers from ClickHouse without its cache, so a load balancer should keep
    sending traffic; only an unreachable ClickHouse makes this 503.
    """
    try:
        await ctx.runner.rows(Query("SELECT 1"), endpoint="readyz", timeout_s=_PROBE_TIMEOUT_S)
        clickhouse = "ok"
    except (ApiError, QueryError) as exc:
        clickhouse = f"unreachable: {exc}"
    cache = await ctx.cache.backend.ping()
    if clickhouse != "ok":
        status = "down"
    else:
        status = "ready" if cache == "ok" else "degraded"
    body = Readiness(status=status, clickhouse=clickhouse, cache=cache)
    return JSONResponse(body.model_dump(), status_code=503 if status == "down" else 200)


@router.get("/metrics", include_in_schema=False)
async def metrics(ctx: ContextDep) -> Response:
    """Prometheus text format."""
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)
