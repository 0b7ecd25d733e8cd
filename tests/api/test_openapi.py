"""schemathesis over the published OpenAPI document, against the API served by uvicorn with
API keys, real Postgres and real Redis: no 5xx, no answer outside its documented schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from adpulse.metadata import api_keys
from adpulse.metadata.store import open_store
from adpulse.settings import load_settings
from api.app import create_app
from api.server import build_server
from tests.api.conftest import REDIS_URL, Seeded
from tests.api.support import serving
from tests.metadata.postgres import temporary_database
from tests.support.clickhouse_server import free_port

# positive_data_acceptance is left out on purpose: from >= to and too-long ranges are valid
# per the schema (OpenAPI cannot relate two parameters) and rightly answered with 422.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]


@pytest.fixture(scope="module")
def served(seeded: Seeded) -> Iterator[tuple[str, str]]:
    """(base URL, API key) of the API with keys on, Postgres metadata and Redis."""
    with temporary_database() as url:
        prefix = f"adpulse-test:openapi:{free_port()}"
        config = load_settings(
            clickhouse_url=seeded.url, postgres_url=url, redis_url=REDIS_URL, cache_prefix=prefix
        )
        store = open_store(config)
        key = api_keys.create(store, "schemathesis").key
        server = build_server(
            config,
            "127.0.0.1",
            free_port(),
            auth_required=True,
            clickhouse_client=seeded.client,
            store=store,
        )
        with serving(server) as base:
            yield base, key
        store.close()


# Built from the app factory at import (nothing is opened before the lifespan runs), because
# schemathesis' lazy from_fixture loader does not work under pytest 9.
DOCUMENT = create_app(load_settings(), auth_required=True).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_the_served_document_is_the_one_tested(served: tuple[str, str]) -> None:
    base, _ = served
    assert httpx.get(f"{base}/openapi.json").json() == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_honours_its_openapi_document(
    case: schemathesis.Case[Any], served: tuple[str, str]
) -> None:
    base, key = served
    case.call_and_validate(base_url=base, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)
