"""What every request handler needs, opened once per process and closed on shutdown."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import anyio.to_thread
import numpy as np
from fastapi import Response

from adpulse.clickhouse.client import ClickHouseClient, Row
from adpulse.clickhouse.roles import connect_as
from adpulse.metadata.store import MetadataStore, open_store
from adpulse.settings import Settings
from api.answer_targets import AnswerTargets, Remembered
from api.cache import CacheBackend, MemoryBackend, ResponseCache, VerifiedKeys, cache_key
from api.campaign_meta import CampaignMetaCache
from api.hot import HotRollups
from api.metrics import ApiMetrics
from api.queries import sql
from api.queries.plan import Segment, minute_rollup_floor, plan
from api.queries.ranges import Granularity, TimeRange
from api.runner import QueryRunner

CampaignIds = np.ndarray[tuple[int], np.dtype[np.int64]]
CampaignSums = np.ndarray[tuple[int, int], np.dtype[np.int64]]


@dataclass
class ApiContext:
    settings: Settings
    database: str
    runner: QueryRunner
    cache: ResponseCache
    store: MetadataStore
    metrics: ApiMetrics
    clock: Callable[[], datetime]
    verified_keys: VerifiedKeys
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    targets: AnswerTargets = field(default_factory=AnswerTargets)
    hot: HotRollups | None = None
    campaign_meta: CampaignMetaCache = field(init=False)

    def __post_init__(self) -> None:
        self.campaign_meta = CampaignMetaCache(self.store, self.settings.cache_ttl_s)

    def now(self) -> datetime:
        return self.clock()

    async def totals(
        self,
        window: TimeRange,
        *,
        endpoint: str,
        group: sql.GroupBy = None,
        campaign_id: int | None = None,
        hot: bool = True,
    ) -> list[Row]:
        """Counts and sums over `window` from the coarsest tables that can answer.

        `hot=False`: never from the rollups held in memory (they may be `cache_ttl_s` old).
        """
        bucket = group if isinstance(group, Granularity) else None
        segments = plan(window, self._minutes_kept_since(), bucket)
        return await self._totals(segments, endpoint, group, campaign_id, hot)

    async def _totals(
        self,
        segments: list[Segment],
        endpoint: str,
        group: sql.GroupBy,
        campaign_id: int | None,
        hot: bool,
    ) -> list[Row]:
        if hot and self.hot is not None:
            now = self.now()
            rows = await self.hot.totals(segments, now, group=group, campaign_id=campaign_id)
            self._count_hot("totals", rows is not None)
            if rows is not None:
                return rows
        query = sql.totals(self.database, segments, group=group, campaign_id=campaign_id)
        return await self.runner.rows(query, endpoint=endpoint)

    async def campaign_totals(
        self, window: TimeRange, *, endpoint: str
    ) -> tuple[CampaignIds, CampaignSums]:
        """Campaigns with events in `window`: ids ascending, and their (campaigns x 5) sums."""
        segments = plan(window, self._minutes_kept_since())
        if self.hot is not None:
            found = await self.hot.per_campaign(segments, self.now())
            self._count_hot("campaigns", found is not None)
            if found is not None:
                return found
        rows = await self._totals(segments, endpoint, "campaign_id", None, hot=False)
        ids = np.asarray([row[0] for row in rows], dtype=np.int64)
        sums = np.asarray([row[1:] for row in rows], dtype=np.int64)
        return ids, sums.reshape(len(rows), len(sql.COUNTS))

    async def two_periods(
        self, window: TimeRange, before: TimeRange, *, endpoint: str, campaign_id: int | None
    ) -> tuple[Row, Row]:
        """Counts and sums of `window` and of `before` (which ends where it starts), in one
        query: one round trip instead of two, and each table read once."""
        kept = self._minutes_kept_since()
        segments = plan(window, kept) + plan(before, kept)
        split = sql.SplitAt(window.start)
        rows = await self._totals(segments, endpoint, split, campaign_id, hot=True)
        found = {row[0]: row[1:] for row in rows}
        nothing = (0,) * len(sql.COUNTS)
        return found.get(1, nothing), found.get(0, nothing)

    async def breakdown(
        self, window: TimeRange, by: sql.Dimension, *, campaign_id: int | None, limit: int
    ) -> list[Row]:
        """Rows of `sql.breakdown` for whole hours: (value, *COUNTS, number of values)."""
        if self.hot is not None:
            rows = await self.hot.breakdown(
                window, by, self.now(), campaign_id=campaign_id, limit=limit
            )
            self._count_hot("breakdown", rows is not None)
            if rows is not None:
                return rows
        query = sql.breakdown(self.database, window, by, campaign_id=campaign_id, limit=limit)
        return await self.runner.rows(query, endpoint="breakdown")

    def _count_hot(self, kind: str, answered: bool) -> None:
        self.metrics.hot_answers.labels(kind, "memory" if answered else "clickhouse").inc()

    def _minutes_kept_since(self) -> datetime:
        return minute_rollup_floor(self.now(), timedelta(days=self.settings.live_retention_days))

    def cache_key(self, endpoint: str, question: Mapping[str, object]) -> str:
        return cache_key(self.settings.cache_prefix, endpoint, question)

    async def answer(
        self,
        endpoint: str,
        question: Mapping[str, object],
        compute: Callable[[], Awaitable[bytes]],
        *,
        ttl_s: float | None = None,
        media_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        same_for_same_target: bool = True,
    ) -> Response:
        """The cached answer to `question` (computing it on a miss), with X-Cache set.

        `same_for_same_target`: the question follows from the request's path and query alone
        (not from the clock), so the fast path may answer that target from this key later.
        """
        key = self.cache_key(endpoint, question)
        ttl = ttl_s if ttl_s is not None else self.settings.cache_ttl_s
        body, hit = await self.cache.fetch(key, ttl, compute, endpoint=endpoint)
        if same_for_same_target:
            extra = tuple((k.lower().encode(), v.encode()) for k, v in (headers or {}).items())
            self.targets.remember(Remembered(key, endpoint, media_type, extra))
        return Response(
            body,
            media_type=media_type,
            headers={"X-Cache": "HIT" if hit else "MISS", **(headers or {})},
        )

    async def aclose(self) -> None:
        for close in reversed(self.closers):
            await close()


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def open_context(
    settings: Settings,
    metrics: ApiMetrics,
    client: ClickHouseClient | None = None,
    store: MetadataStore | None = None,
    clock: Callable[[], datetime] = _utcnow,
) -> ApiContext:
    """Open what the settings name; a passed client or store stays the caller's to close."""
    closers: list[Callable[[], Awaitable[None]]] = []
    if client is None:
        client = await anyio.to_thread.run_sync(connect_as, settings, "api")
        closers.append(_in_thread(client.close))
    if store is None:
        store = await anyio.to_thread.run_sync(open_store, settings)
        closers.append(_in_thread(store.close))
    backend: CacheBackend
    if settings.redis_url:
        from api.cache_redis import RedisBackend

        backend = RedisBackend(settings.redis_url, metrics)
    else:
        backend = MemoryBackend()
    cache = ResponseCache(backend, metrics, lock_ttl_s=settings.api_query_timeout_s + 2)
    closers.append(cache.close)
    runner = QueryRunner(
        client,
        metrics,
        timeout_s=settings.api_query_timeout_s,
        send_limits=client.topology_hint == "embedded",
    )
    keys = VerifiedKeys(settings.api_key_cache_s)
    hot = None
    if settings.api_hot_hours:
        hot = HotRollups(
            client.database,
            runner,
            horizon=timedelta(hours=settings.api_hot_hours),
            ttl_s=settings.cache_ttl_s,
            max_bytes=settings.api_hot_mb * 1024 * 1024,
        )
    return ApiContext(
        settings, client.database, runner, cache, store, metrics, clock, keys, closers, hot=hot
    )


def _in_thread(close: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await anyio.to_thread.run_sync(close)

    return run
