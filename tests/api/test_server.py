"""`serve` under real uvicorn: keys work over HTTP and never reach a log; binds are checked."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from adpulse.errors import ConfigError
from adpulse.metadata import api_keys
from adpulse.metadata.store import open_store
from adpulse.settings import load_settings
from api.server import build_server, check_bind
from tests.api.conftest import Seeded
from tests.api.support import serving
from tests.metadata.postgres import temporary_database
from tests.support.clickhouse_server import free_port


def test_served_api_checks_keys_and_never_logs_them(
    seeded: Seeded,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with temporary_database() as url:
        settings = load_settings(
            clickhouse_url=seeded.url, postgres_url=url, redis_url=None, log_level="DEBUG"
        )
        store = open_store(settings)
        key = api_keys.create(store, "e2e")
        revoked = api_keys.create(store, "gone")
        api_keys.revoke(store, str(revoked.record.id))
        server = build_server(
            settings,
            "127.0.0.1",
            free_port(),
            auth_required=True,
            clickhouse_client=seeded.client,
            store=store,
        )
        with serving(server) as base, httpx.Client(base_url=base) as http:
            path = "/api/v1/summary?from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z"
            statuses = [
                http.get(path, headers={"Authorization": f"Bearer {k}"}).status_code
                for k in (key.key, revoked.key, key.key + "x")
            ]
            assert http.get(path).status_code == 401
            assert http.get("/healthz").json() == {"status": "ok"}
        store.close()
    assert statuses == [200, 401, 401]
    out, err = capfd.readouterr()
    logged = out + err + caplog.text
    assert "GET /api/v1/summary" in logged, "the access log should be captured here"
    for secret in (key.key, revoked.key, key.key[12:], revoked.key[12:]):
        assert secret not in logged


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_no_auth_on_loopback_is_allowed(host: str) -> None:
    check_bind(host, auth_required=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "api.example.com"])
def test_no_auth_elsewhere_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match=f"--no-auth on {host} would serve every number"):
        check_bind(host, auth_required=False)
    check_bind(host, auth_required=True)
