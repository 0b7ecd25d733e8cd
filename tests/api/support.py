"""Oracles and helpers for API tests: answers recomputed straight from the raw events table."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import uvicorn

from adpulse.clickhouse.client import ClickHouseClient, Params, QuerySettings, Row
from adpulse.events import Event

if TYPE_CHECKING:
    from adpulse.clickhouse.client import Int64Matrix

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Written independently of api/queries: plain SQL over `events`, nothing shared.
RAW_SUMS = (
    "countIf(event_type = 'impression'), countIf(event_type = 'click'), "
    "countIf(event_type = 'conversion'), sum(cost_micros), sum(revenue_micros)"
)


def ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def raw_totals(
    client: ClickHouseClient,
    start: datetime,
    end: datetime,
    *,
    campaign_id: int | None = None,
    key: str | None = None,
) -> list[Row]:
    """(key?, impressions, clicks, conversions, spend, revenue) over [start, end) of raw events."""
    where = (
        "event_time >= fromUnixTimestamp64Milli({a:Int64}, 'UTC') "
        "AND event_time < fromUnixTimestamp64Milli({b:Int64}, 'UTC')"
    )
    params: dict[str, Any] = {"a": ms(start), "b": ms(end)}
    if campaign_id is not None:
        where += " AND campaign_id = {c:UInt32}"
        params["c"] = campaign_id
    select = f"{key} AS k, {RAW_SUMS}" if key else RAW_SUMS
    group = " GROUP BY k ORDER BY k" if key else ""
    sql = f"SELECT {select} FROM {client.database}.events WHERE {where}{group}"
    return client.query(sql, params)


def expected(counts: Sequence[Any]) -> dict[str, Any]:
    """The API's metric keys, derived here by hand from five raw sums."""
    imp, clk, conv, spend, rev = (int(v or 0) for v in counts)
    return {
        "impressions": imp,
        "clicks": clk,
        "conversions": conv,
        "spend_micros": spend,
        "revenue_micros": rev,
        "ctr": clk / imp if imp else None,
        "cvr": conv / clk if clk else None,
        "cpm": spend * 1000 / imp if imp else None,
        "cpa": spend / conv if conv else None,
        "roas": rev / spend if spend else None,
    }


METRIC_KEYS = tuple(expected([0] * 5))


def metrics_of(answer: Mapping[str, Any]) -> dict[str, Any]:
    return {k: answer[k] for k in METRIC_KEYS}


def floor_to(moment: datetime, seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=int((moment - EPOCH).total_seconds()) // seconds * seconds)


def ceil_to(moment: datetime, seconds: int) -> datetime:
    floored = floor_to(moment, seconds)
    return floored if floored == moment else floored + timedelta(seconds=seconds)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def boundary_events(start: datetime, end: datetime) -> list[Event]:
    """Events exactly on every hour boundary and 1 ms before it: half-open ranges must split
    them the same way the oracle does."""
    events = []
    moment = ceil_to(start, 3600)
    n = 0
    while moment < end:
        for offset, kind in ((0, "click"), (-1, "conversion"), (0, "impression")):
            n += 1
            events.append(
                Event(
                    event_id=str(uuid.UUID(int=n, version=4)),
                    event_type=kind,
                    event_time_ms=ms(moment) + offset,
                    campaign_id=3,
                    ad_id=3001,
                    advertiser_id=1,
                    publisher_id=77,
                    country="FR",
                    device_type="tablet",
                    cost_micros=1_000 if kind == "impression" else 0,
                    revenue_micros=5_000_000 if kind == "conversion" else 0,
                    user_id="",
                )
            )
        moment += timedelta(hours=1)
    return events


class RecordingClient:
    """Passes calls to a real client and records the SQL it ran (and can slow queries down)."""

    def __init__(self, inner: ClickHouseClient, delay_s: float = 0.0) -> None:
        self.inner = inner
        self.database = inner.database
        self.topology_hint = inner.topology_hint
        self.delay_s = delay_s
        self.statements: list[str] = []

    def query(
        self, sql: str, params: Params | None = None, settings: QuerySettings | None = None
    ) -> list[Row]:
        self.statements.append(sql)
        if self.delay_s:
            time.sleep(self.delay_s)
        return self.inner.query(sql, params, settings)

    def query_matrix(
        self,
        sql: str,
        params: Params | None = None,
        settings: QuerySettings | None = None,
        *,
        columns: int,
    ) -> Int64Matrix:
        self.statements.append(sql)
        if self.delay_s:
            time.sleep(self.delay_s)
        return self.inner.query_matrix(sql, params, settings, columns=columns)

    def command(
        self, sql: str, params: Params | None = None, settings: QuerySettings | None = None
    ) -> None:
        self.inner.command(sql, params, settings)

    def insert(
        self,
        table: str,
        columns: Mapping[str, Sequence[Any]],
        settings: QuerySettings | None = None,
    ) -> int:
        return self.inner.insert(table, columns, settings)

    def close(self) -> None:
        """The session's client stays open for other tests."""

    def data_queries(self) -> list[str]:
        return [s for s in self.statements if s != "SELECT 1"]


@contextmanager
def serving(server: uvicorn.Server) -> Iterator[str]:
    """Run a uvicorn server in a thread; yields its base URL; stops it afterwards."""
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start; see the captured log")
        time.sleep(0.05)
    try:
        yield f"http://{server.config.host}:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
