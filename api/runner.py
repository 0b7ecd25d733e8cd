"""Run API queries on ClickHouse: off the event loop, under limits, within a deadline.

Contract: `rows` never blocks the event loop and returns or raises within the query timeout
plus a grace period. Running out of time raises a 504 ApiError; ClickHouse being unreachable
or the read limits being hit raise a 503. A thread abandoned at the deadline finishes on its
own, because ClickHouse enforces the same time limit on the server side.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from adpulse.clickhouse.client import ClickHouseClient, QueryError, Row, UnavailableError
from adpulse.clickhouse.config import ConfigOptions
from api.errors import ApiError
from api.metrics import ApiMetrics
from api.queries.sql import Query

if TYPE_CHECKING:
    from adpulse.clickhouse.client import Int64Matrix

log = logging.getLogger("adpulse.api")
T = TypeVar("T")

_TIMEOUT_CODES = {159, 160}  # TIMEOUT_EXCEEDED, TOO_SLOW
_LIMIT_CODES = {158, 201, 241, 307}  # TOO_MANY_ROWS, QUOTA_EXCEEDED, MEMORY_LIMIT, TOO_MANY_BYTES
_GRACE_S = 2.0
_THREADS = 8


class QueryRunner:
    """Runs `Query` objects for the API.

    On a server the API logs in as the read-only `api` user, whose profile holds the limits
    and refuses any SET (readonly=1), so nothing is sent. The embedded engine has no users, so
    the same limits travel with each query instead.
    """

    def __init__(
        self, client: ClickHouseClient, metrics: ApiMetrics, *, timeout_s: float, send_limits: bool
    ) -> None:
        self.client = client
        self.metrics = metrics
        self.timeout_s = timeout_s
        self.send_limits = send_limits
        self._limiter = anyio.CapacityLimiter(_THREADS)

    async def rows(
        self, query: Query, *, endpoint: str, timeout_s: float | None = None
    ) -> list[Row]:
        return await self._in_thread(self.client.query, query, endpoint, timeout_s)

    async def matrix(
        self, query: Query, *, endpoint: str, timeout_s: float | None = None
    ) -> Int64Matrix:
        """A query of Int64 columns, as `ClickHouseClient.query_matrix`, under the same rules."""
        call = partial(self.client.query_matrix, columns=len(query.columns))
        return await self._in_thread(call, query, endpoint, timeout_s)

    async def _in_thread(
        self, call: Callable[..., T], query: Query, endpoint: str, timeout_s: float | None
    ) -> T:
        budget = timeout_s or self.timeout_s
        deadline = time.monotonic() + budget
        started = time.perf_counter()
        work = partial(self._run, call, query, deadline, budget)
        try:
            with anyio.fail_after(budget + _GRACE_S):
                result = await anyio.to_thread.run_sync(
                    work, limiter=self._limiter, abandon_on_cancel=True
                )
        except TimeoutError:
            raise self._timeout(endpoint, budget) from None
        self.metrics.queries.labels(endpoint).observe(time.perf_counter() - started)
        return result

    def _run(self, call: Callable[..., T], query: Query, deadline: float, budget: float) -> T:
        remaining = deadline - time.monotonic()
        if remaining < 0.05:  # waited for a free connection until the time was gone
            raise TimeoutError
        settings = self._limits(remaining) if self.send_limits else None
        try:
            return call(query.sql, query.params, settings)
        except QueryError as exc:
            if exc.code in _TIMEOUT_CODES:
                raise TimeoutError from None
            if exc.code in _LIMIT_CODES:
                self.metrics.query_failures.labels("limit").inc()
                raise ApiError(
                    503,
                    "the query hit the API's ClickHouse read limits; narrow the range or filter "
                    "by campaign_id",
                ) from None
            self.metrics.query_failures.labels("error").inc()
            raise
        except UnavailableError as exc:
            self.metrics.query_failures.labels("unavailable").inc()
            log.warning("ClickHouse unavailable: %s", exc)
            raise ApiError(503, f"ClickHouse is unavailable; try again shortly ({exc})") from None

    def _limits(self, remaining: float) -> dict[str, Any]:
        limits = ConfigOptions()  # the api user's profile on a server
        return {
            "max_execution_time": round(min(remaining, self.timeout_s), 3),
            "timeout_overflow_mode": "throw",
            "max_memory_usage": limits.api_max_memory_usage,
            "max_rows_to_read": limits.api_max_rows_to_read,
            "read_overflow_mode": "throw",
            "readonly": 1,
            # The API's reads are small; starting a thread pool per query cost more than it
            # saved (summary 18 -> 14 ms of CPU), and concurrent requests already run in
            # parallel on the engine's separate sessions.
            "max_threads": 1,
        }

    def _timeout(self, endpoint: str, budget: float) -> ApiError:
        self.metrics.query_failures.labels("timeout").inc()
        log.warning("query for %s ran out of its %.1f s", endpoint, budget)
        return ApiError(
            504,
            f"the query ran longer than {budget:g} s and was stopped; narrow the range, use a "
            "coarser granularity or filter by campaign_id",
        )
