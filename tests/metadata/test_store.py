"""Migrations and connections, on Postgres and SQLite through the same code."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from adpulse.errors import ConfigError, MigrationError
from adpulse.metadata.migrations import MIGRATIONS, Migration, migrate
from adpulse.metadata.store import (
    MetadataStore,
    MetadataUnavailable,
    create_store_engine,
    open_store,
    store_url,
)
from adpulse.metadata.tables import ledger, metadata
from adpulse.settings import Settings, load_settings


def test_migrations_build_the_tables_the_code_reads(store: MetadataStore) -> None:
    """Drift check: history replayed on an empty database gives tables.py's columns."""
    inspector = inspect(store.engine)
    for table in metadata.sorted_tables:
        found = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert list(found) == [c.name for c in table.columns], table.name
        for column in table.columns:
            assert found[column.name]["nullable"] == column.nullable, (table.name, column.name)


def test_migrate_records_versions_and_is_idempotent(store: MetadataStore) -> None:
    with store.begin() as conn:
        versions = [row.version for row in conn.execute(select(ledger.c.version))]
    assert versions == [m.version for m in MIGRATIONS]
    assert store.migrate() == []


def test_a_newer_database_is_refused(store: MetadataStore) -> None:
    newer = (*MIGRATIONS, Migration(99, "from_the_future", lambda conn: None))
    assert migrate(store.engine, newer) == [99]
    with pytest.raises(MigrationError, match=r"migrations \[99\].*upgrade adpulse"):
        store.migrate()


def test_a_failed_migration_leaves_nothing_behind(store_settings: Settings) -> None:
    store = MetadataStore(create_store_engine(store_url(store_settings)))

    def broken(conn: object) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        migrate(store.engine, (*MIGRATIONS, Migration(2, "broken", broken)))
    # One transaction: version 1's tables and ledger rows rolled back with version 2.
    assert "campaigns" not in inspect(store.engine).get_table_names()
    assert store.migrate() == [1]
    store.close()


def test_sqlite_lives_under_the_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store(load_settings(postgres_url=None))
    store.close()
    assert (tmp_path / ".adpulse" / "metadata.sqlite3").is_file()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"),
        ("postgresql://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
    ],
)
def test_postgres_urls_use_psycopg(given: str, expected: str) -> None:
    assert store_url(load_settings(postgres_url=given)) == expected


def test_a_foreign_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ADPULSE_POSTGRES_URL: scheme 'mysql' is not Postgres"):
        store_url(load_settings(postgres_url="mysql://u@h/d"))


def test_unreachable_postgres_is_one_readable_error_without_the_password() -> None:
    url = "postgresql+psycopg://adpulse:hunter2-secret@127.0.0.1:1/none"
    store = MetadataStore(create_store_engine(url))
    with pytest.raises(MetadataUnavailable) as caught:
        store.migrate()
    message = str(caught.value)
    assert "127.0.0.1:1" in message and "ADPULSE_POSTGRES_URL" in message
    assert "hunter2" not in message
