"""Dependency aliases and the query parameters shared by the routers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, cast

from fastapi import Depends, Query, Request
from pydantic import AwareDatetime

from api.context import ApiContext
from api.errors import bad_parameter
from api.queries.ranges import (
    HOUR,
    MAX_BREAKDOWN_RANGE,
    MAX_RANGE,
    MINUTE,
    RangeError,
    TimeRange,
    checked_range,
)

MAX_ID = 2**32 - 1


# Dependencies are `async def` although they never await: FastAPI runs plain `def`
# dependencies in a worker thread, a thread hop per dependency per request.


async def get_context(request: Request) -> ApiContext:
    return cast(ApiContext, request.app.state.ctx)


ContextDep = Annotated[ApiContext, Depends(get_context)]

FromParam = Annotated[
    AwareDatetime,
    Query(
        alias="from",
        description="Start of the range, inclusive: RFC 3339 with an offset (2026-01-31T00:00:00Z)",
    ),
]
ToParam = Annotated[
    AwareDatetime, Query(description="End of the range, exclusive: RFC 3339 with an offset")
]
CampaignParam = Annotated[
    int | None, Query(ge=0, le=MAX_ID, description="Only this campaign (numeric id)")
]


def checked(start: datetime, end: datetime, step: timedelta, limit: timedelta) -> TimeRange:
    """`checked_range`, with its RangeError turned into a 422 that names the parameter."""
    try:
        return checked_range(start, end, step, limit)
    except RangeError as exc:
        value = (start if exc.param == "from" else end).isoformat()
        raise bad_parameter(exc.param, str(exc), value) from None
    except OverflowError:
        raise bad_parameter("from", "from/to is too far from today to convert to UTC") from None


async def minute_window(from_: FromParam, to: ToParam) -> TimeRange:
    return checked(from_, to, MINUTE, MAX_RANGE)


async def hour_window(from_: FromParam, to: ToParam) -> TimeRange:
    return checked(from_, to, HOUR, MAX_BREAKDOWN_RANGE)


MinuteWindow = Annotated[TimeRange, Depends(minute_window)]
"""[from, to) widened to whole minutes (the finest rollup), at most 732 days."""
HourWindow = Annotated[TimeRange, Depends(hour_window)]
"""[from, to) widened to whole hours (breakdown rollups are hourly), at most 92 days."""
