"""Repeated questions answered from the cache before routing, never skipping a check."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adpulse.metadata import api_keys
from adpulse.metadata.store import MetadataStore
from api.cache import LocalCopies, MemoryBackend, ResponseCache
from api.metrics import ApiMetrics
from tests.api.conftest import AppFactory
from tests.api.support import RecordingClient

SUMMARY = "/api/v1/summary?from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z"
EXPORT = "/api/v1/export.csv?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z"


@pytest.fixture
def keyed(make_app: AppFactory, store: MetadataStore) -> Iterator[tuple[TestClient, str]]:
    key = api_keys.create(store, "dash").key
    with TestClient(make_app(auth_required=True, api_key_cache_s=60)) as http:
        yield http, key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def remembered(http: TestClient, path: str) -> bool:
    app = http.app
    assert isinstance(app, FastAPI)
    return app.state.ctx.targets.get(path.encode()) is not None


def test_a_repeated_question_is_answered_from_the_cache_before_routing(
    keyed: tuple[TestClient, str], recording: RecordingClient
) -> None:
    http, key = keyed
    first = http.get(SUMMARY, headers=bearer(key))
    assert first.headers["x-cache"] == "MISS" and remembered(http, SUMMARY)
    again = [http.get(SUMMARY, headers=bearer(key)) for _ in range(3)]
    assert all(r.status_code == 200 and r.headers["x-cache"] == "HIT" for r in again)
    assert all(r.content == first.content for r in again)
    assert again[0].headers["content-type"] == first.headers["content-type"]
    assert len(recording.data_queries()) == 1
    metrics = http.get("/metrics").text
    assert 'adpulse_api_cache_requests_total{endpoint="summary",result="hit"} 3.0' in metrics


def test_a_remembered_question_still_needs_a_verified_key(
    keyed: tuple[TestClient, str],
) -> None:
    http, key = keyed
    assert http.get(SUMMARY, headers=bearer(key)).status_code == 200
    assert remembered(http, SUMMARY)
    assert http.get(SUMMARY).status_code == 401
    assert http.get(SUMMARY, headers=bearer(key + "x")).status_code == 401
    assert http.get(SUMMARY, headers={"Authorization": f"Basic {key}"}).status_code == 401
    # A different target is validated from scratch.
    assert http.get(SUMMARY + "&campaign_id=abc", headers=bearer(key)).status_code == 422


def test_a_fast_hit_keeps_the_export_attachment_header(keyed: tuple[TestClient, str]) -> None:
    http, key = keyed
    first = http.get(EXPORT, headers=bearer(key))
    hit = http.get(EXPORT, headers=bearer(key))
    assert hit.headers["x-cache"] == "HIT" and hit.content == first.content
    assert hit.headers["content-disposition"] == first.headers["content-disposition"]
    assert hit.headers["content-type"].startswith("text/csv")


def test_live_is_not_remembered_because_its_window_moves(keyed: tuple[TestClient, str]) -> None:
    http, key = keyed
    http.get("/api/v1/live", headers=bearer(key))
    assert not remembered(http, "/api/v1/live?")


def test_local_copies_last_until_the_stored_expiry_and_stay_bounded() -> None:
    copies = LocalCopies(max_bytes=10)
    copies.put("a", 1_000, b"12345")
    assert copies.get("a", 999) == b"12345"
    assert copies.get("a", 1_000) is None
    copies.put("b", 2_000, b"12345")
    copies.put("c", 2_000, b"123456")  # over 10 bytes: the oldest goes
    assert copies.get("b", 0) is None and copies.get("c", 0) == b"123456"


@pytest.mark.anyio
async def test_a_copy_read_from_the_shared_store_expires_when_the_writer_said() -> None:
    now = [1_000.0]
    shared = MemoryBackend(clock=lambda: 0.0)  # the store never expires it by itself here
    writer = ResponseCache(shared, ApiMetrics(), lock_ttl_s=5, wall_clock=lambda: now[0])
    reader = ResponseCache(shared, ApiMetrics(), lock_ttl_s=5, wall_clock=lambda: now[0])

    async def compute() -> bytes:
        return b"answer"

    assert await writer.fetch("k", 60, compute, endpoint="summary") == (b"answer", False)
    assert await reader.peek("k", endpoint="summary") == b"answer"
    now[0] += 59.9
    assert await reader.peek("k", endpoint="summary") == b"answer"
    now[0] += 0.2
    assert await reader.peek("k", endpoint="summary") is None
    assert await writer.peek("k", endpoint="summary") is None
