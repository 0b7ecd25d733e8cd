"""Response shapes. Their field descriptions are the API's published documentation."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.queries.ranges import Granularity
from api.queries.sql import Dimension

_MICROS = "in micros (millionths of the account currency)"


class Metrics(BaseModel):
    """Counts, sums and the ratios derived from them. A ratio is null when its denominator is 0."""

    impressions: int = Field(ge=0, description="Impression events")
    clicks: int = Field(ge=0, description="Click events")
    conversions: int = Field(ge=0, description="Conversion events")
    spend_micros: int = Field(ge=0, description=f"Sum of cost_micros, {_MICROS}")
    revenue_micros: int = Field(ge=0, description=f"Sum of revenue_micros, {_MICROS}")
    ctr: float | None = Field(description="clicks / impressions; null when impressions = 0")
    cvr: float | None = Field(description="conversions / clicks; null when clicks = 0")
    cpm: float | None = Field(
        description=f"spend_micros / impressions * 1000, {_MICROS}; null when impressions = 0"
    )
    cpa: float | None = Field(
        description=f"spend_micros / conversions, {_MICROS}; null when conversions = 0"
    )
    roas: float | None = Field(description="revenue_micros / spend_micros; null when spend = 0")


class _Window(BaseModel):
    from_: datetime = Field(
        serialization_alias="from",
        description="Start of the answered range (inclusive), widened to the bucket",
    )
    to: datetime = Field(description="End of the answered range (exclusive), widened to the bucket")


class Period(Metrics, _Window):
    """Metrics over one period."""


class Summary(Period):
    """Totals over [from, to); with compare=previous also over the period of equal length before."""

    previous: Period | None = Field(
        default=None,
        description="Present with compare=previous: the same keys for [from - span, from)",
    )


class _Bucket(BaseModel):
    t: datetime = Field(description="Start of the bucket")


class Point(Metrics, _Bucket):
    """Metrics of one bucket."""


class Timeseries(_Window):
    granularity: Granularity
    points: list[Point] = Field(description="One point per bucket in [from, to), zeros included")


class _Campaign(BaseModel):
    campaign_id: int = Field(ge=0)
    name: str | None = Field(description="From the metadata store; null if never imported")
    advertiser: str | None
    status: str | None = Field(description="active, paused or archived; null if unknown")
    daily_budget_micros: int | None = Field(description=f"Daily budget {_MICROS}")


class CampaignRow(Metrics, _Campaign):
    """One campaign: its metadata, then its metrics."""


class Campaigns(_Window):
    total: int = Field(ge=0, description="Rows matching q before limit and offset")
    limit: int = Field(ge=1)
    offset: int = Field(ge=0)
    rows: list[CampaignRow]


class _Value(BaseModel):
    value: str = Field(
        description="Country code ('' = not geolocated), device type, or publisher id as text"
    )


class BreakdownRow(Metrics, _Value):
    """One value of the dimension."""


class Breakdown(_Window):
    by: Dimension
    values_total: int = Field(ge=0, description="Distinct values before limit")
    rows: list[BreakdownRow] = Field(description="Biggest impressions first")


class Live(_Window):
    points: list[Point] = Field(description="One point per minute; the last one is in progress")


class Freshness(BaseModel):
    newest_event_time: datetime | None = Field(description="Newest event_time stored; null if none")
    lag_seconds: float | None = Field(description="checked_at - newest_event_time, in seconds")
    checked_at: datetime


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str = Field(description="ready, degraded (cache down, answers still served) or down")
    clickhouse: str
    cache: str


class ErrorBody(BaseModel):
    detail: str = Field(description="What went wrong and what to do about it")
