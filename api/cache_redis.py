"""Redis as the answer cache, shared by every API process, and never a reason to fail.

Any Redis error is logged once per outage and counted; the caller then sees a miss and
answers from ClickHouse. After an error Redis is skipped for `down_for_s`, so an outage costs
one failed call per period instead of one per request. A refused connection fails at once;
the 1 s timeout is for an unreachable host, and is long enough that a busy event loop is not
mistaken for an outage (that would turn the cache off for everyone for `down_for_s`).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from api.metrics import ApiMetrics

log = logging.getLogger("adpulse.api")
T = TypeVar("T")

# Delete the lock only if this process still holds it (it may have expired and moved on).
_UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"
# Take the lock (KEYS[1]) and read the answer (KEYS[2]) in one round trip.
_LOCK_OR_GET = """
local locked = redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
return {locked and 1 or 0, redis.call('get', KEYS[2])}
"""
# Store the answer (KEYS[1]), then release the lock (KEYS[2]) as _UNLOCK does.
_SET_AND_UNLOCK = """
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('get', KEYS[2]) == ARGV[3] then redis.call('del', KEYS[2]) end
"""


class RedisBackend:
    def __init__(
        self,
        url: str,
        metrics: ApiMetrics,
        *,
        timeout_s: float = 1.0,
        down_for_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client: redis.Redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            # One attempt: a retry would only make every request wait longer during an outage.
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        parts = urlsplit(url)
        self._where = f"{parts.hostname}:{parts.port or 6379}"  # never the password
        self._metrics = metrics
        self._down_for_s = down_for_s
        self._down_until = 0.0
        self._down = False
        self._clock = clock
        self._token = secrets.token_hex(8)
        self._unlock = self._client.register_script(_UNLOCK)
        self._lock_or_get = self._client.register_script(_LOCK_OR_GET)
        self._set_and_unlock = self._client.register_script(_SET_AND_UNLOCK)

    async def _call(self, operation: str, call: Callable[[], Awaitable[T]], default: T) -> T:
        if self._clock() < self._down_until:
            self._metrics.cache_bypassed.inc()
            return default
        try:
            result = await call()
        except (RedisError, OSError) as exc:
            self._metrics.cache_errors.labels(operation).inc()
            if not self._down:
                log.warning(
                    "Redis at %s failed on %s (%s): answering from ClickHouse without a cache, "
                    "retrying Redis every %g s",
                    self._where,
                    operation,
                    exc,
                    self._down_for_s,
                )
            self._down = True
            self._down_until = self._clock() + self._down_for_s
            return default
        if self._down:
            log.warning("Redis at %s answers again; caching resumed", self._where)
            self._down = False
        return result

    async def get(self, key: str) -> bytes | None:
        value: Any = await self._call("get", lambda: self._client.get(key), None)
        return bytes(value) if value is not None else None

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        await self._call("set", lambda: self._client.set(key, value, px=int(ttl_s * 1000)), None)

    async def lock_or_get(self, lock_key: str, key: str, ttl_s: float) -> tuple[bool, bytes | None]:
        async def take() -> tuple[bool, bytes | None]:
            args: list[str | int] = [self._token, int(ttl_s * 1000)]
            locked, value = await self._lock_or_get(keys=[lock_key, key], args=args)
            return bool(locked), bytes(value) if value is not None else None

        # Unreachable: compute without the lock (nothing to share it with), as a miss.
        return await self._call("lock", take, (True, None))

    async def unlock(self, key: str) -> None:
        await self._call("unlock", lambda: self._unlock(keys=[key], args=[self._token]), None)

    async def set_and_unlock(self, key: str, value: bytes, ttl_s: float, lock_key: str) -> None:
        args: list[bytes | str | int] = [value, int(ttl_s * 1000), self._token]
        await self._call("set", lambda: self._set_and_unlock(keys=[key, lock_key], args=args), None)

    async def ping(self) -> str:
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            return f"unreachable: {exc}"
        return "ok"

    async def close(self) -> None:
        await self._client.aclose()
