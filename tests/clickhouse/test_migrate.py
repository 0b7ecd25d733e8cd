"""Migrations against the embedded engine and a real server: ledger, drift, lock, resume."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from adpulse.clickhouse.client import ClickHouseClient
from adpulse.clickhouse.connection import connect
from adpulse.clickhouse.migrate import MigrationLock, Migrator
from adpulse.clickhouse.schema import SchemaOptions, migration_files
from adpulse.errors import MigrationError
from adpulse.topology import single

FIXTURES = Path(__file__).parent / "fixtures" / "simple_migrations"


def migrator(client: ClickHouseClient, directory: Path | None = None) -> Migrator:
    options = SchemaOptions(database=client.database)
    if directory is None:
        return Migrator(client, single(), options)
    return Migrator(client, single(), options, directory)


def ledger_rows(client: ClickHouseClient) -> list[tuple[object, ...]]:
    return client.query(
        f"SELECT version, status FROM {client.database}.schema_migrations ORDER BY version, seq"
    )


def test_all_migrations_apply_and_rerun_is_a_noop(chdb_db: ClickHouseClient) -> None:
    versions = [m.version for m in migration_files()]
    m = migrator(chdb_db)

    assert m.migrate() == versions
    assert m.migrate() == []

    assert ledger_rows(chdb_db) == [(v, "applied") for v in versions]
    assert {s.state for s in m.status()} == {"applied"}
    tables = {r[0] for r in chdb_db.query(f"SHOW TABLES FROM {chdb_db.database}")}
    assert {"events", "events_per_minute", "campaign_hourly", "campaign_daily"} <= tables


def test_dry_run_lists_statements_and_changes_nothing(chdb_db: ClickHouseClient) -> None:
    m = migrator(chdb_db)
    todo = m.pending()
    assert [p.file.version for p, _ in todo] == [f.version for f in migration_files()]
    assert all(resume == 0 for _, resume in todo)
    tables = {r[0] for r in chdb_db.query(f"SHOW TABLES FROM {chdb_db.database}")}
    assert tables == {"schema_migrations"}


def test_to_version_stops_there(chdb_db: ClickHouseClient, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(FIXTURES, directory)
    m = migrator(chdb_db, directory)
    assert m.migrate(to=1) == [1]
    assert [s.state for s in m.status()] == ["applied", "pending"]
    assert m.migrate() == [2]


def test_changed_applied_migration_is_refused_by_name(
    chdb_db: ClickHouseClient, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(FIXTURES, directory)
    m = migrator(chdb_db, directory)
    m.migrate()
    target = directory / "0001_first.sql.j2"
    target.write_text(target.read_text().replace("a UInt32", "a UInt64"))

    with pytest.raises(MigrationError, match=r"0001_first\.sql\.j2 was applied with checksum"):
        m.migrate()
    assert [s.state for s in m.status()] == ["changed", "applied"]


def test_failed_migration_is_reported_and_resumes_where_it_stopped(
    chdb_db: ClickHouseClient, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    directory.mkdir()
    db = chdb_db.database
    # Statement 1 is deliberately not idempotent: re-running it would fail, so a pass proves
    # the resume skipped it.
    (directory / "0001_resume.sql.j2").write_text(
        "CREATE TABLE {{ db }}.a (x UInt8) ENGINE = MergeTree ORDER BY x;\n"
        "CREATE TABLE {{ db }}.b AS {{ db }}.missing;\n"
        "CREATE TABLE {{ db }}.c (x UInt8) ENGINE = MergeTree ORDER BY x;\n"
    )
    m = migrator(chdb_db, directory)
    with pytest.raises(MigrationError, match=r"failed at statement 2/3"):
        m.migrate()
    [status] = m.status()
    assert status.state == "failed"
    assert "stopped at statement 2/3" in status.detail

    chdb_db.command(f"CREATE TABLE {db}.missing (x UInt8) ENGINE = MergeTree ORDER BY x")
    assert m.migrate() == [1]
    assert [s.state for s in m.status()] == ["applied"]
    assert ledger_rows(chdb_db) == [(1, "failed"), (1, "applied")]


def test_held_lock_refuses_a_second_migrator(chdb_db: ClickHouseClient) -> None:
    m = migrator(chdb_db)
    m.ensure_ledger()
    with MigrationLock(chdb_db, chdb_db.database):
        with pytest.raises(MigrationError, match="another migration holds the lock"):
            m.migrate()
    assert m.migrate() == [f.version for f in migration_files()]


def test_concurrent_embedded_migrators_apply_each_version_once(
    chdb_db: ClickHouseClient,
) -> None:
    results: list[object] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        try:
            results.append(migrator(chdb_db).migrate())
        except MigrationError as exc:
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    applied = [v for r in results if isinstance(r, list) for v in r]
    assert sorted(applied) == [f.version for f in migration_files()]
    assert [r for r in ledger_rows(chdb_db) if r[1] == "applied"] == [
        (f.version, "applied") for f in migration_files()
    ]


def test_native_backend_migrates_and_concurrent_runs_apply_once(native_port: int) -> None:
    url = f"clickhouse://default@127.0.0.1:{native_port}/mig_native"
    admin = connect(url.replace("/mig_native", "/default"))
    admin.command("DROP DATABASE IF EXISTS mig_native")
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        client = connect(url)  # its own connection: the race happens on the server
        barrier.wait()
        try:
            outcomes.append(migrator(client, FIXTURES).migrate())
        except MigrationError as exc:
            outcomes.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    errors = [o for o in outcomes if isinstance(o, MigrationError)]
    assert [o for o in outcomes if isinstance(o, list)] == [[1, 2]]
    assert len(errors) == 1 and "holds the lock" in str(errors[0])
    client = connect(url)
    assert ledger_rows(client) == [(1, "applied"), (2, "applied")]
    assert migrator(client, FIXTURES).migrate() == []
    client.close()
    admin.close()
