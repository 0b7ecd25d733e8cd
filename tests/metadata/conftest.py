"""Each test gets its own metadata store: a fresh Postgres database, or SQLite in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adpulse.metadata.store import MetadataStore, open_store
from adpulse.settings import Settings, load_settings
from tests.metadata.postgres import temporary_database


@pytest.fixture(params=["sqlite", "postgres"])
def store_settings(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Settings naming a fresh store; SQLite lands in tmp_path/.adpulse like `adpulse up`'s."""
    monkeypatch.chdir(tmp_path)
    if request.param == "sqlite":
        yield load_settings(postgres_url=None)
        return
    with temporary_database() as url:
        yield load_settings(postgres_url=url)


@pytest.fixture
def store(store_settings: Settings) -> Iterator[MetadataStore]:
    opened = open_store(store_settings)
    yield opened
    opened.close()
