"""The cache's pure parts and single-flight, in process: keys, TTL store, shared fills."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import pytest

from api.cache import MemoryBackend, ResponseCache, VerifiedKeys, cache_key
from api.metrics import ApiMetrics
from api.queries.campaigns_table import SortKey

T = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def test_equal_questions_share_a_key() -> None:
    a = cache_key("p", "summary", {"from": T, "to": T, "campaign_id": None, "sort": SortKey.NAME})
    b = cache_key("p", "summary", {"sort": "name", "to": T, "from": T})
    assert a == b == "p:v2:summary?from=1795773600&sort=name&to=1795773600"


def test_different_questions_differ_and_text_cannot_forge_a_key() -> None:
    base = {"from": T, "to": T}
    keys = {
        cache_key("p", "summary", base),
        cache_key("p", "summary", base | {"campaign_id": 3}),
        cache_key("p", "campaigns", base),
        cache_key("p", "campaigns", base | {"q": "a&to=1"}),
    }
    assert len(keys) == 4
    assert "q=a%26to%3D1" in cache_key("p", "campaigns", {"q": "a&to=1"})


@pytest.mark.anyio
async def test_memory_backend_expires_and_stays_bounded() -> None:
    now = [0.0]
    backend = MemoryBackend(max_entries=2, clock=lambda: now[0])
    await backend.set("a", b"1", ttl_s=10)
    assert await backend.get("a") == b"1"
    now[0] = 10.0
    assert await backend.get("a") is None
    for key in ("x", "y", "z"):
        await backend.set(key, key.encode(), ttl_s=10)
    assert [await backend.get(k) for k in ("x", "y", "z")] == [None, b"y", b"z"]


@pytest.mark.anyio
async def test_concurrent_misses_share_one_fill() -> None:
    cache = ResponseCache(MemoryBackend(), ApiMetrics(), lock_ttl_s=5)
    calls = 0

    async def compute() -> bytes:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.05)
        return b"answer"

    results: list[tuple[bytes, bool]] = []

    async def ask() -> None:
        results.append(await cache.fetch("k", 60, compute, endpoint="t"))

    async with anyio.create_task_group() as group:
        for _ in range(50):
            group.start_soon(ask)
    assert calls == 1
    assert results == [(b"answer", False)] * 50
    assert await cache.fetch("k", 60, compute, endpoint="t") == (b"answer", True)


@pytest.mark.anyio
async def test_a_failed_fill_reaches_every_waiter_and_is_not_cached() -> None:
    cache = ResponseCache(MemoryBackend(), ApiMetrics(), lock_ttl_s=5)

    async def broken() -> bytes:
        await anyio.sleep(0.02)
        raise RuntimeError("ClickHouse said no")

    async def ask() -> str:
        try:
            await cache.fetch("k", 60, broken, endpoint="t")
        except RuntimeError as exc:
            return str(exc)
        return "answered"

    outcomes: list[str] = []

    async def record() -> None:
        outcomes.append(await ask())

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(record)
    assert outcomes == ["ClickHouse said no"] * 5

    async def fixed() -> bytes:
        return b"ok"

    assert await cache.fetch("k", 60, fixed, endpoint="t") == (b"ok", False)


@pytest.mark.anyio
async def test_a_caller_that_gives_up_does_not_cancel_the_fill() -> None:
    cache = ResponseCache(MemoryBackend(), ApiMetrics(), lock_ttl_s=5)

    async def slow() -> bytes:
        await anyio.sleep(0.1)
        return b"late"

    with anyio.move_on_after(0.02):
        await cache.fetch("k", 60, slow, endpoint="t")
    assert await cache.fetch("k", 60, slow, endpoint="t") == (b"late", False)
    assert await cache.fetch("k", 60, slow, endpoint="t") == (b"late", True)


def test_verified_keys_expire_and_zero_means_never_remembered() -> None:
    now = [0.0]
    keys = VerifiedKeys(5, clock=lambda: now[0])
    keys.remember("h")
    assert keys.fresh("h") and not keys.fresh("other")
    now[0] = 5.0
    assert not keys.fresh("h")
    off = VerifiedKeys(0, clock=lambda: now[0])
    off.remember("h")
    assert not off.fresh("h")
