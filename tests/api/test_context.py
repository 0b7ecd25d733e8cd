"""The context the API opens: its ClickHouse login, and the one TTL its caches share."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from fastapi.testclient import TestClient

from adpulse.errors import ConfigError
from adpulse.settings import load_settings
from api.cache import KEY_VERSION, unpack
from api.context import open_context
from api.metrics import ApiMetrics
from tests.api.conftest import REDIS_URL, AppFactory
from tests.api.support import floor_to, iso
from tests.support.clickhouse_server import ROLE_PASSWORDS

TTL_S = 1.0  # not the default 60 s


@pytest.mark.anyio
async def test_the_api_logs_in_as_the_api_user(native_port: int) -> None:
    settings = load_settings(
        clickhouse_url=f"clickhouse://ingest@127.0.0.1:{native_port}/default",
        clickhouse_api_password="not-the-api-password",
        # The ingest password is right: the API must not borrow it.
        clickhouse_ingest_password=ROLE_PASSWORDS["ingest"],
    )
    with pytest.raises(ConfigError) as info:
        await open_context(settings, ApiMetrics())
    message = str(info.value)
    assert "refused the api role's login as user 'api' (wrong password, code 193)" in message
    assert "check ADPULSE_CLICKHOUSE_API_PASSWORD" in message


def stored_expiry(prefix: str, endpoint: str) -> float:
    """When the one answer of `endpoint` stored in Redis under `prefix` expires, epoch seconds."""
    conn = redis.Redis.from_url(REDIS_URL)
    try:
        pattern = f"{prefix}:{KEY_VERSION}:{endpoint}[?]*"
        [key] = [k for k in conn.scan_iter(match=pattern) if not k.endswith(b":lock")]
        raw = conn.get(key)
    finally:
        conn.close()
    assert isinstance(raw, bytes)
    stored = unpack(raw)
    assert stored is not None
    return stored[0] / 1000


@pytest.mark.parametrize(("endpoint", "kind"), [("summary", "totals"), ("campaigns", "campaigns")])
def test_answers_and_the_data_behind_them_follow_one_ttl(
    make_app: AppFactory, redis_prefix: str, endpoint: str, kind: str
) -> None:
    """`cache_ttl_s` reaches the answer cache, the rollups held in memory and the campaign
    metadata alike. Asked again past the TTL, an answer is built from data read again and is
    cached for a whole TTL once more; a data cache keeping its read longer than the answer
    cache would make that answer expire before it was stored."""
    app = make_app(
        redis_url=REDIS_URL, cache_prefix=redis_prefix, cache_ttl_s=TTL_S, api_hot_hours=72
    )
    end = floor_to(datetime.now(UTC), 60)
    path = f"/api/v1/{endpoint}?from={iso(end - timedelta(hours=6))}&to={iso(end)}"
    with TestClient(app) as http:
        assert app.state.ctx.campaign_meta.ttl_s == TTL_S
        for attempt in ("first", "past the TTL"):
            if attempt != "first":
                time.sleep(TTL_S * 1.2)
            started = time.time()
            assert http.get(path).headers["x-cache"] == "MISS"
            finished = time.time()
            expires = stored_expiry(redis_prefix, endpoint)
            assert started + TTL_S - 0.01 <= expires <= finished + TTL_S + 0.01, (
                f"{attempt}: the answer expires {expires - started:.3f} s after it was asked, "
                f"not {TTL_S} s: give the answer cache and every data cache behind it (api.hot, "
                "api.campaign_meta) the TTL of AnswerTtls"
            )
    memory = {"kind": kind, "source": "memory"}
    answered = app.state.metrics.registry.get_sample_value("adpulse_api_hot_answers_total", memory)
    assert answered == 2  # both from the rollups in memory, so the test checked them
