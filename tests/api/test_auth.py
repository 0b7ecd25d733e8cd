"""API keys: missing, wrong and revoked keys get 401; health routes stay open."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adpulse.metadata import api_keys
from adpulse.metadata.store import MetadataStore, open_store
from adpulse.settings import load_settings
from tests.api.conftest import AppFactory
from tests.metadata.postgres import temporary_database

SUMMARY = "/api/v1/summary?from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z"
DATA_ROUTES = [
    SUMMARY,
    "/api/v1/timeseries?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&granularity=hour",
    "/api/v1/campaigns?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
    "/api/v1/export.csv?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
    "/api/v1/breakdown?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&by=country",
    "/api/v1/live",
    "/api/v1/freshness",
]


@pytest.fixture(params=["postgres", "sqlite"])
def key_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MetadataStore]:
    monkeypatch.chdir(tmp_path)
    if request.param == "sqlite":
        store = open_store(load_settings(postgres_url=None))
        yield store
        store.close()
        return
    with temporary_database() as url:
        store = open_store(load_settings(postgres_url=url))
        yield store
        store.close()


@pytest.fixture
def http(make_app: AppFactory, key_store: MetadataStore) -> Iterator[TestClient]:
    """Keys checked against the store on every request (no reuse of a passed check)."""
    app = make_app(auth_required=True, app_store=key_store, api_key_cache_s=0)
    with TestClient(app) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("path", DATA_ROUTES)
def test_every_data_route_needs_a_key(http: TestClient, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "adpulse apikey create" in response.json()["detail"]


def test_valid_key_passes_wrong_and_revoked_keys_do_not(
    http: TestClient, key_store: MetadataStore
) -> None:
    good, other = api_keys.create(key_store, "dash"), api_keys.create(key_store, "old")
    assert http.get(SUMMARY, headers=bearer(good.key)).status_code == 200
    assert http.get(SUMMARY, headers=bearer(other.key)).status_code == 200
    for wrong in (good.key[:-1] + ("A" if good.key[-1] != "A" else "B"), "adp_x", "garbage"):
        response = http.get(SUMMARY, headers=bearer(wrong))
        assert response.status_code == 401
        assert response.json()["detail"].startswith("API key not recognised or revoked")
    assert http.get(SUMMARY, headers={"Authorization": f"Basic {good.key}"}).status_code == 401
    api_keys.revoke(key_store, str(other.record.id))
    assert http.get(SUMMARY, headers=bearer(other.key)).status_code == 401
    assert http.get(SUMMARY, headers=bearer(good.key)).status_code == 200


def test_a_passed_check_is_reused_only_for_api_key_cache_s(
    make_app: AppFactory, key_store: MetadataStore
) -> None:
    key = api_keys.create(key_store, "dash")
    app = make_app(auth_required=True, app_store=key_store, api_key_cache_s=2)
    with TestClient(app) as http:
        assert http.get(SUMMARY, headers=bearer(key.key)).status_code == 200
        api_keys.revoke(key_store, str(key.record.id))
        assert http.get(SUMMARY, headers=bearer(key.key)).status_code == 200  # within 2 s
        time.sleep(2.1)
        assert http.get(SUMMARY, headers=bearer(key.key)).status_code == 401


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
def test_health_metrics_and_docs_need_no_key(http: TestClient, path: str) -> None:
    assert http.get(path).status_code == 200


def test_failures_are_counted(http: TestClient) -> None:
    http.get(SUMMARY)
    http.get(SUMMARY, headers=bearer("adp_nope"))
    text = http.get("/metrics").text
    assert 'adpulse_api_auth_failures_total{reason="missing"} 1.0' in text
    assert 'adpulse_api_auth_failures_total{reason="invalid"} 1.0' in text


def test_openapi_declares_the_bearer_scheme(http: TestClient) -> None:
    spec = http.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert spec["paths"]["/api/v1/summary"]["get"]["security"] == [{"ApiKey": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]
