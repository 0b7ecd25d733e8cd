"""The API app factory: wires settings, ClickHouse, the metadata store, cache and routers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import Depends, FastAPI
from starlette.types import Receive, Scope, Send

from adpulse.clickhouse.client import ClickHouseClient
from adpulse.metadata.store import MetadataStore
from adpulse.settings import Settings
from api.auth import require_api_key
from api.context import open_context
from api.errors import install_error_handlers
from api.fast_path import CachedAnswers
from api.metrics import ApiMetrics, RequestMetrics
from api.routers import breakdown, campaigns, freshness, health, live, summary, timeseries

DESCRIPTION = """Ad metrics from adpulse's ClickHouse rollups.

* Times are RFC 3339 with an offset; ranges are half-open, [from, to), and widen to whole
  buckets (minutes for totals, hours for breakdowns, the granularity for time series). Every
  answer states the range it covers.
* Money is in micros (millionths of the account currency). Ratios are null when their
  denominator is 0.
* Answers are cached (60 s for history, 2 s for live and freshness); `X-Cache` says HIT or MISS.
* Data routes need `Authorization: Bearer <API key>` unless the server runs with --no-auth.
"""


class Api(FastAPI):
    """FastAPI, with repeated questions answered before its middleware stack is entered."""

    fast: CachedAnswers | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self.fast is not None
            and await self.fast.answered(scope, send)
        ):
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings,
    clickhouse_client: ClickHouseClient | None = None,
    *,
    auth_required: bool,
    store: MetadataStore | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The API. A passed client or store is shared, not closed (local mode shares chDB)."""
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = await open_context(
            settings, metrics, clickhouse_client, store, **({"clock": clock} if clock else {})
        )
        app.state.ctx = context
        try:
            yield
        finally:
            await context.aclose()

    app = Api(title="adpulse", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.metrics = metrics
    install_error_handlers(app)
    app.add_middleware(RequestMetrics, metrics=metrics)
    # Added last, so outermost: a repeated question never reaches routing or validation.
    app.add_middleware(CachedAnswers, api=app, auth_required=auth_required)
    app.fast = CachedAnswers(app, api=app, auth_required=auth_required)
    guard = [Depends(require_api_key)] if auth_required else []
    # In this order: it is the order of paths in the OpenAPI document.
    for resource in (summary, timeseries, campaigns, breakdown, live, freshness):
        app.include_router(resource.router, dependencies=guard)
    app.include_router(health.router)
    return app
