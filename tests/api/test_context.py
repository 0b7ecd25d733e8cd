"""The API opens ClickHouse as its own read-only `api` user (a real 18.16 server's login)."""

from __future__ import annotations

import pytest

from adpulse.errors import ConfigError
from adpulse.settings import load_settings
from api.context import open_context
from api.metrics import ApiMetrics
from tests.support.clickhouse_server import ROLE_PASSWORDS


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
