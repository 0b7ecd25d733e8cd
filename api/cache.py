"""Answer cache: normalised keys, single-flight fills, Redis or an in-process TTL store.

Contract: `fetch` returns (value, hit). Concurrent misses of one key in this process share
one fill; across processes a short Redis lock lets one of them compute while the others poll
for its result. A failing cache never fails a request: the value is computed and returned.

Each stored value carries its absolute expiry, so a process may keep a local copy of what it
read or wrote until exactly then: a hit on a hot key skips the Redis round trip, and is never
staler than Redis itself would have served.
"""

from __future__ import annotations

import asyncio
import math
import struct
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol
from urllib.parse import quote

from api.metrics import ApiMetrics

KEY_VERSION = "v2"  # bump when the shape of cached answers changes (v2: expiry prefix)
_POLL_S = 0.02
_EXPIRY = struct.Struct(">q")  # before each stored answer: when it expires, epoch ms
LOCAL_COPY_BYTES = 64 * 1024 * 1024

# The wall-clock time of the oldest data the answer being computed was built from, when that
# data came from a cache of its own (api/hot) rather than from ClickHouse just now.
_read_at: ContextVar[list[float] | None] = ContextVar("adpulse_data_read_at", default=None)


@dataclass(frozen=True, slots=True)
class AnswerTtls:
    """How long answers are cached, in seconds: built once from the settings (`open_context`),
    and what every other part reads.

    `history_s` (historical panels) is also how long the data caches behind them (api.hot,
    api.campaign_meta) reuse a read. An answer built from such data expires `history_s` after
    the read (`note_data_read_at`): with a longer reuse, answers would be staler than `history_s`
    and stored already expired, never served from the cache. `live_s`: /live and /freshness.
    """

    history_s: float
    live_s: float


def note_data_read_at(wall_time: float) -> None:
    """Called while computing an answer: part of it was read at `wall_time` (epoch seconds),
    so the answer must expire `ttl` after that, not `ttl` after it was computed."""
    oldest = _read_at.get()
    if oldest is not None:
        oldest[0] = min(oldest[0], wall_time)


def pack(body: bytes, expires_ms: int) -> bytes:
    return _EXPIRY.pack(expires_ms) + body


def unpack(raw: bytes) -> tuple[int, bytes] | None:
    """(expiry, body), or None for a value not written by this version."""
    if len(raw) < _EXPIRY.size:
        return None
    return _EXPIRY.unpack_from(raw)[0], raw[_EXPIRY.size :]


def cache_key(prefix: str, endpoint: str, params: Mapping[str, object]) -> str:
    """The same question gets the same key: names sorted, None dropped, times in epoch seconds.

    Callers pass ranges already aligned to their granularity (ranges.widen), so requests a few
    seconds apart within one bucket share a key.
    """
    parts = []
    for name in sorted(params):
        value = params[name]
        if value is None:
            continue
        if isinstance(value, datetime):
            text = str(int(value.timestamp()))
        elif isinstance(value, Enum):
            text = str(value.value)
        else:
            text = str(value)
        parts.append(f"{name}={quote(text, safe='')}")
    return f"{prefix}:{KEY_VERSION}:{endpoint}?{'&'.join(parts)}"


class CacheBackend(Protocol):
    """Where cached answers live. No method raises: failures read as a miss."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def lock_or_get(self, lock_key: str, key: str, ttl_s: float) -> tuple[bool, bytes | None]:
        """Take the fill lock and read `key`, in one round trip: (True if this process should
        compute `key` (always, when nothing is shared), the stored value or None)."""

    async def unlock(self, key: str) -> None: ...

    async def set_and_unlock(self, key: str, value: bytes, ttl_s: float, lock_key: str) -> None:
        """`set`, then `unlock(lock_key)`, in one round trip."""

    async def ping(self) -> str:
        """'ok' or why the cache is unreachable."""

    async def close(self) -> None: ...


class MemoryBackend:
    """In-process TTL store for when no Redis is configured; oldest entries go first."""

    def __init__(
        self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        return value

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        self._entries[key] = (self._clock() + ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def lock_or_get(self, lock_key: str, key: str, ttl_s: float) -> tuple[bool, bytes | None]:
        return True, await self.get(key)

    async def unlock(self, key: str) -> None:
        return None

    async def set_and_unlock(self, key: str, value: bytes, ttl_s: float, lock_key: str) -> None:
        await self.set(key, value, ttl_s)

    async def ping(self) -> str:
        return "ok"

    async def close(self) -> None:
        self._entries.clear()


class VerifiedKeys:
    """API keys (by hash) that passed the store's check less than `ttl_s` ago.

    A hit saves a metadata-store query per request; the price is that a revoked key keeps
    working on a process for up to `ttl_s` seconds. Only successes are remembered.
    """

    def __init__(
        self, ttl_s: float, clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000
    ) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._max = max_entries
        self._until: dict[str, float] = {}

    def fresh(self, key_hash: str) -> bool:
        return self._until.get(key_hash, 0.0) > self._clock()

    def remember(self, key_hash: str) -> None:
        if self.ttl_s <= 0:
            return
        if len(self._until) >= self._max:
            self._until.clear()  # a flood of distinct valid keys is not a case worth an LRU
        self._until[key_hash] = self._clock() + self.ttl_s


class LocalCopies:
    """Answers this process read or wrote, each kept until its stored expiry; oldest go first
    once they hold more than `max_bytes`."""

    def __init__(self, max_bytes: int = LOCAL_COPY_BYTES) -> None:
        self._entries: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes

    def get(self, key: str, now_ms: int) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= now_ms:
            self._drop(key)
            return None
        return entry[1]

    def put(self, key: str, expires_ms: int, body: bytes) -> None:
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (expires_ms, body)
        self._bytes += len(body)
        while self._bytes > self._max_bytes and self._entries:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        _, body = self._entries.pop(key)
        self._bytes -= len(body)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0


class ResponseCache:
    """Single-flight reads through a backend, with local copies in front of it."""

    def __init__(
        self,
        backend: CacheBackend,
        metrics: ApiMetrics,
        *,
        lock_ttl_s: float,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend = backend
        self.metrics = metrics
        self.lock_ttl_s = lock_ttl_s
        self._inflight: dict[str, asyncio.Task[bytes]] = {}
        self._local = LocalCopies()
        self._wall_clock = wall_clock

    def _now_ms(self) -> int:
        return int(self._wall_clock() * 1000)

    async def _lookup(self, key: str) -> bytes | None:
        body = self._local.get(key, self._now_ms())
        if body is not None:
            return body
        return self._stored(key, await self.backend.get(key))

    def _stored(self, key: str, raw: bytes | None) -> bytes | None:
        """The answer in a value read from the backend, if there is one still fresh."""
        stored = unpack(raw) if raw is not None else None
        if stored is None or stored[0] <= self._now_ms():
            return None
        self._local.put(key, *stored)
        return stored[1]

    async def _lock(self, lock_key: str, key: str) -> tuple[bool, bytes | None]:
        """(locked, the answer another process stored meanwhile, or None)."""
        body = self._local.get(key, self._now_ms())
        if body is not None:
            return False, body
        locked, raw = await self.backend.lock_or_get(lock_key, key, self.lock_ttl_s)
        return locked, self._stored(key, raw)

    async def peek(self, key: str, *, endpoint: str) -> bytes | None:
        """The cached answer (a counted hit), or None without counting a miss."""
        body = await self._lookup(key)
        if body is not None:
            self.metrics.cache.labels(endpoint, "hit").inc()
        return body

    async def fetch(
        self, key: str, ttl_s: float, compute: Callable[[], Awaitable[bytes]], *, endpoint: str
    ) -> tuple[bytes, bool]:
        cached = await self.peek(key, endpoint=endpoint)
        if cached is not None:
            return cached, True
        self.metrics.cache.labels(endpoint, "miss").inc()
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._fill(key, ttl_s, compute))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        # shield: a caller that disconnects must not cancel the fill others are waiting for.
        return await asyncio.shield(task), False

    def _finished(self, key: str, task: asyncio.Task[bytes]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here too, so no "never retrieved" noise

    async def _fill(self, key: str, ttl_s: float, compute: Callable[[], Awaitable[bytes]]) -> bytes:
        # A miss costs three round trips to a shared cache: the lookup, then the lock taken
        # with a second lookup (another process may have stored the answer since the first),
        # then the answer stored with the lock released.
        lock_key = key + ":lock"
        locked, stored = await self._lock(lock_key, key)
        deadline = time.monotonic() + self.lock_ttl_s
        while stored is None and not locked and time.monotonic() < deadline:
            # Another process is computing this answer: take its result when it lands.
            await asyncio.sleep(_POLL_S)
            locked, stored = await self._lock(lock_key, key)
        if stored is not None:
            if locked:
                await self.backend.unlock(lock_key)
            return stored
        stored_it = False
        try:
            read_at = [math.inf]
            _read_at.set(read_at)  # this task's own context: its compute() sees this list
            value = await compute()
            expires_ms = self._now_ms() + int(ttl_s * 1000)
            if read_at[0] < math.inf:
                expires_ms = min(expires_ms, int((read_at[0] + ttl_s) * 1000))
            packed = pack(value, expires_ms)
            if locked:
                await self.backend.set_and_unlock(key, packed, ttl_s, lock_key)
                stored_it = True
            else:
                await self.backend.set(key, packed, ttl_s)
            self._local.put(key, expires_ms, value)
            return value
        finally:
            if locked and not stored_it:
                await self.backend.unlock(lock_key)

    async def close(self) -> None:
        self._local.clear()
        await self.backend.close()
