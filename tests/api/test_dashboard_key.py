"""The dashboard's key: the API registers ADPULSE_DASHBOARD_API_KEY at startup, in the store its
settings name (a real Postgres), and the dashboard's requests with it pass; a rotated key
replaces the previous one, which verifies for ADPULSE_KEY_ROTATION_GRACE_S more."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adpulse.errors import ConfigError
from adpulse.metadata import api_keys
from adpulse.metadata.store import open_store
from adpulse.settings import load_settings
from api.app import create_app
from tests.api.conftest import Seeded
from tests.metadata.postgres import temporary_database

SUMMARY = "/api/v1/summary?from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z"
# As the stack generates it (stacks/secret_store.py): `adp_` and 43 letters and digits.
FIRST = "adp_" + "FirstDashboardKeyOfTheStack0000000000000001"
ROTATED = "adp_" + "RotatedDashboardKeyOfTheStack00000000000002"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with temporary_database() as url:
        yield url


def api(seeded: Seeded, postgres_url: str, key: str, grace_s: float | None = None) -> FastAPI:
    """The API as a host runs it: it opens (and migrates) the store its settings name."""
    grace = {} if grace_s is None else {"key_rotation_grace_s": grace_s}
    settings = load_settings(
        clickhouse_url=seeded.url,
        postgres_url=postgres_url,
        redis_url=None,
        dashboard_api_key=key,
        api_key_cache_s=0,
        **grace,
    )
    return create_app(settings, seeded.client, auth_required=True)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_the_dashboard_key_passes_once_the_api_has_started(
    seeded: Seeded, postgres_url: str
) -> None:
    with TestClient(api(seeded, postgres_url, FIRST)) as http:
        assert http.get(SUMMARY, headers=bearer(FIRST)).status_code == 200
        assert http.get(SUMMARY, headers=bearer(ROTATED)).status_code == 401
    # A restart (another host, the same key) registers nothing new.
    with TestClient(api(seeded, postgres_url, FIRST)) as http:
        assert http.get(SUMMARY, headers=bearer(FIRST)).status_code == 200
    store = open_store(load_settings(postgres_url=postgres_url))
    try:
        keys = api_keys.list_keys(store)
    finally:
        store.close()
    assert [(k.name, k.prefix, k.revoked_at) for k in keys] == [("dashboard", FIRST[:12], None)]


def test_a_rolling_deploy_that_rotates_the_key_keeps_every_dashboard_working(
    seeded: Seeded, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The first host deployed registers the rotated key; the hosts not reached yet still serve
    dashboards sending the previous one, which verifies through the grace (default: an hour)."""
    with TestClient(api(seeded, postgres_url, FIRST)):
        pass
    caplog.set_level(logging.INFO, logger="adpulse.api")
    with TestClient(api(seeded, postgres_url, ROTATED)) as http:
        assert http.get(SUMMARY, headers=bearer(ROTATED)).status_code == 200
        assert http.get(SUMMARY, headers=bearer(FIRST)).status_code == 200
    # A host not yet deployed with the rotated key restarts: the rotation holds.
    with TestClient(api(seeded, postgres_url, FIRST)) as http:
        assert http.get(SUMMARY, headers=bearer(ROTATED)).status_code == 200
        assert http.get(SUMMARY, headers=bearer(FIRST)).status_code == 200
    store = open_store(load_settings(postgres_url=postgres_url))
    try:
        first, rotated = api_keys.list_keys(store)
    finally:
        store.close()
    assert first.revoked_at is not None and rotated.revoked_at is None
    assert first.state(datetime.now(UTC)) == "retiring"
    until = first.revoked_at.isoformat()
    messages = [r.getMessage() for r in caplog.records if r.name == "adpulse.api"]
    assert [m for m in messages if "dashboard key" in m.lower()] == [
        f"dashboard key {rotated.id} replaces key {first.id}, which verifies until {until} "
        "(ADPULSE_KEY_ROTATION_GRACE_S) for the hosts not deployed yet",
        f"ADPULSE_DASHBOARD_API_KEY is key {first.id}, replaced by a newer dashboard key and "
        f"retiring: it verifies until {until}; deploy this host before then to give its "
        "dashboard the stack's current key",
    ]
    assert not any(FIRST in m or ROTATED in m for m in messages), "a key was logged"


def test_with_no_grace_a_rotated_key_replaces_the_previous_one_at_once(
    seeded: Seeded, postgres_url: str
) -> None:
    with TestClient(api(seeded, postgres_url, FIRST)):
        pass
    with TestClient(api(seeded, postgres_url, ROTATED, grace_s=0)) as http:
        assert http.get(SUMMARY, headers=bearer(ROTATED)).status_code == 200
        refused = http.get(SUMMARY, headers=bearer(FIRST))
        assert refused.status_code == 401
        assert refused.json()["detail"].startswith("API key not recognised or revoked")
    with TestClient(api(seeded, postgres_url, FIRST)) as http:
        assert http.get(SUMMARY, headers=bearer(ROTATED)).status_code == 200
        assert http.get(SUMMARY, headers=bearer(FIRST)).status_code == 401


def test_a_value_that_is_not_a_key_stops_the_api_naming_the_variable_not_the_value(
    seeded: Seeded, postgres_url: str
) -> None:
    placeholder = "changeme-dashboard-key"
    with pytest.raises(ConfigError) as info, TestClient(api(seeded, postgres_url, placeholder)):
        pass
    message = str(info.value)
    assert message.startswith("ADPULSE_DASHBOARD_API_KEY: the key to register as 'dashboard'")
    assert "dashboard-api-key secret" in message and placeholder not in message
