"""What every request handler needs, opened once per process and closed on shutdown."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import anyio.to_thread
from fastapi import Response

from adpulse.clickhouse.client import ClickHouseClient
from adpulse.clickhouse.roles import connect_as
from adpulse.errors import ConfigError
from adpulse.metadata import api_keys
from adpulse.metadata.store import MetadataStore, open_store
from adpulse.settings import Settings
from api.answer_targets import AnswerTargets, Remembered
from api.cache import (
    AnswerTtls,
    CacheBackend,
    MemoryBackend,
    ResponseCache,
    VerifiedKeys,
    cache_key,
)
from api.campaign_meta import CampaignMetaCache
from api.counts import Counts
from api.hot import HotRollups
from api.metrics import ApiMetrics
from api.runner import QueryRunner

log = logging.getLogger("adpulse.api")


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
    ttls: AnswerTtls
    counts: Counts
    campaign_meta: CampaignMetaCache
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    targets: AnswerTargets = field(default_factory=AnswerTargets)

    def now(self) -> datetime:
        return self.clock()

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
        ttl = ttl_s if ttl_s is not None else self.ttls.history_s
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
    if settings.dashboard_api_key is not None:
        key = settings.dashboard_api_key.get_secret_value()
        grace = timedelta(seconds=settings.key_rotation_grace_s)
        try:
            await anyio.to_thread.run_sync(register_dashboard_key, store, key, grace)
        except BaseException:
            for close in reversed(closers):
                await close()
            raise
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
    # The one place the TTLs are read: the data caches behind historical answers reuse a read
    # exactly as long as those answers are cached (see AnswerTtls).
    ttls = AnswerTtls(history_s=settings.cache_ttl_s, live_s=settings.live_cache_ttl_s)
    hot = None
    if settings.api_hot_hours:
        hot = HotRollups(
            client.database,
            runner,
            horizon=timedelta(hours=settings.api_hot_hours),
            ttl_s=ttls.history_s,
            max_bytes=settings.api_hot_mb * 1024 * 1024,
        )
    counts = Counts(
        client.database,
        runner,
        metrics,
        clock,
        minute_retention=timedelta(days=settings.live_retention_days),
        hot=hot,
    )
    return ApiContext(
        settings,
        client.database,
        runner,
        cache,
        store,
        metrics,
        clock,
        keys,
        ttls=ttls,
        counts=counts,
        campaign_meta=CampaignMetaCache(store, ttls.history_s),
        closers=closers,
    )


def register_dashboard_key(
    store: MetadataStore, key: str, grace: timedelta = api_keys.ROTATION_GRACE
) -> None:
    """Make ADPULSE_DASHBOARD_API_KEY the current `dashboard` key, the ones it replaces retiring
    after `grace` (api_keys.register); logs ids only. Raises ConfigError for a value that is
    not a key."""
    try:
        registered = api_keys.register(store, api_keys.DASHBOARD, key, grace=grace)
    except api_keys.ApiKeyError as exc:
        raise ConfigError(
            f"ADPULSE_DASHBOARD_API_KEY: {exc}; set it to the stack's dashboard-api-key secret, "
            "as `adpulse deploy` does"
        ) from None
    record = registered.record
    if record.revoked_at is not None and record.state(datetime.now(UTC)) == "retiring":
        # A host the rolling deploy has not reached yet: its dashboard works until then.
        log.warning(
            "ADPULSE_DASHBOARD_API_KEY is key %d, replaced by a newer dashboard key and retiring: "
            "it verifies until %s; deploy this host before then to give its dashboard the "
            "stack's current key",
            record.id,
            record.revoked_at.isoformat(),
        )
    elif record.revoked_at is not None:
        # Deployed too long before the key's rotation: its dashboard is refused until its turn.
        log.warning(
            "ADPULSE_DASHBOARD_API_KEY is key %d, revoked at %s: deploy this host to give its "
            "dashboard the stack's current key",
            record.id,
            record.revoked_at.isoformat(),
        )
    for old in registered.revoked:
        assert old.revoked_at is not None
        log.info(
            "dashboard key %d replaces key %d, which verifies until %s "
            "(ADPULSE_KEY_ROTATION_GRACE_S) for the hosts not deployed yet",
            record.id,
            old.id,
            old.revoked_at.isoformat(),
        )


def _in_thread(close: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await anyio.to_thread.run_sync(close)

    return run
