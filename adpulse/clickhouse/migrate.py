"""Versioned, checksummed schema migrations recorded in a ledger table, under a lock.

Contract: `migrate` applies pending migrations in version order and records each in the ledger
(`schema_migrations`); an applied migration whose rendered SQL changed is refused; only one
migrator runs at a time (`schema_migration_lock`, taken by an atomic CREATE TABLE); a failure
is recorded with the statement it stopped at, and the next run resumes there.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from adpulse import names
from adpulse.clickhouse.client import ClickHouseClient, QueryError
from adpulse.clickhouse.schema import (
    MIGRATIONS_DIR,
    MigrationFile,
    SchemaOptions,
    migration_files,
    render_statements,
)
from adpulse.errors import MigrationError
from adpulse.topology import Topology

TABLE_EXISTS = 57


@dataclass(frozen=True)
class PlannedMigration:
    """A migration file rendered for one topology."""

    file: MigrationFile
    statements: list[str]

    @property
    def checksum(self) -> str:
        return hashlib.sha256("\n;\n".join(self.statements).encode()).hexdigest()


@dataclass(frozen=True)
class LedgerEntry:
    version: int
    name: str
    checksum: str
    status: str  # applied | failed
    statements_done: int
    error: str
    applied_at: datetime
    duration_ms: int


@dataclass(frozen=True)
class MigrationStatus:
    version: int
    name: str
    state: str  # applied | pending | failed | changed | missing-file
    applied_at: datetime | None
    duration_ms: int | None
    detail: str


Progress = Callable[[PlannedMigration, int], None]


class Migrator:
    """Applies the migrations of `directory` to one database for one topology."""

    def __init__(
        self,
        client: ClickHouseClient,
        topology: Topology,
        options: SchemaOptions,
        directory: Path = MIGRATIONS_DIR,
    ) -> None:
        self.client = client
        self.topology = topology
        self.options = options
        self.directory = directory
        self.db = options.database

    def plan(self) -> list[PlannedMigration]:
        return [
            PlannedMigration(f, render_statements(f.template, self.topology, self.options))
            for f in migration_files(self.directory)
        ]

    def ensure_ledger(self) -> None:
        self.client.command(f"CREATE DATABASE IF NOT EXISTS {self.db}")
        for statement in render_statements("ledger.sql.j2", self.topology, self.options):
            self.client.command(statement)

    def ledger(self) -> dict[int, LedgerEntry]:
        rows = self.client.query(
            f"SELECT version, argMax(name, seq), argMax(checksum, seq), argMax(status, seq), "
            f"argMax(statements_done, seq), argMax(error, seq), argMax(applied_at, seq), "
            f"argMax(duration_ms, seq) FROM {self.db}.{names.MIGRATIONS_TABLE} GROUP BY version"
        )
        return {
            int(r[0]): LedgerEntry(
                version=int(r[0]),
                name=r[1],
                checksum=r[2],
                status=r[3],
                statements_done=int(r[4]),
                error=r[5],
                applied_at=r[6],
                duration_ms=int(r[7]),
            )
            for r in rows
        }

    def status(self) -> list[MigrationStatus]:
        """Every migration on disk or in the ledger, with its state."""
        self.ensure_ledger()
        ledger = self.ledger()
        result = []
        planned = {p.file.version: p for p in self.plan()}
        for version in sorted(set(planned) | set(ledger)):
            entry, plan = ledger.get(version), planned.get(version)
            if plan is None:
                assert entry is not None
                result.append(
                    MigrationStatus(
                        version,
                        entry.name,
                        "missing-file",
                        entry.applied_at,
                        entry.duration_ms,
                        "applied but its file is gone",
                    )
                )
            elif entry is None:
                result.append(MigrationStatus(version, plan.file.name, "pending", None, None, ""))
            elif entry.status == "failed":
                detail = (
                    f"stopped at statement {entry.statements_done + 1}/{len(plan.statements)}: "
                    f"{entry.error.splitlines()[0][:200] if entry.error else ''}"
                )
                result.append(
                    MigrationStatus(
                        version,
                        plan.file.name,
                        "failed",
                        entry.applied_at,
                        entry.duration_ms,
                        detail,
                    )
                )
            elif entry.checksum != plan.checksum:
                result.append(
                    MigrationStatus(
                        version,
                        plan.file.name,
                        "changed",
                        entry.applied_at,
                        entry.duration_ms,
                        "file changed since it was applied",
                    )
                )
            else:
                result.append(
                    MigrationStatus(
                        version, plan.file.name, "applied", entry.applied_at, entry.duration_ms, ""
                    )
                )
        return result

    def pending(self, to: int | None = None) -> list[tuple[PlannedMigration, int]]:
        """Migrations still to apply (with the statement to resume at); refuses drift."""
        self.ensure_ledger()
        ledger = self.ledger()
        plans = self.plan()
        on_disk = {p.file.version for p in plans}
        gone = [e for v, e in ledger.items() if v not in on_disk and e.status == "applied"]
        if gone:
            raise MigrationError(
                f"migration {gone[0].version:04d}_{gone[0].name} is in the ledger but its file is "
                f"missing from {self.directory}; restore it (applied migrations are never deleted)"
            )
        todo = []
        for plan in plans:
            entry = ledger.get(plan.file.version)
            if entry and entry.status == "applied":
                if entry.checksum != plan.checksum:
                    raise MigrationError(
                        f"migration {plan.file.path.name} was applied with checksum "
                        f"{entry.checksum[:12]} but now renders to {plan.checksum[:12]}: an "
                        "applied migration must not change; revert the file and put the change "
                        "in a new migration"
                    )
                continue
            if to is not None and plan.file.version > to:
                break
            resume = entry.statements_done if entry and entry.checksum == plan.checksum else 0
            todo.append((plan, resume))
        return todo

    def migrate(self, to: int | None = None, progress: Progress | None = None) -> list[int]:
        """Apply pending migrations under the lock; returns the versions applied."""
        self.ensure_ledger()
        with MigrationLock(self.client, self.db):
            applied = []
            for plan, resume in self.pending(to):
                self._apply(plan, resume, progress)
                applied.append(plan.file.version)
            return applied

    def _apply(self, plan: PlannedMigration, resume: int, progress: Progress | None) -> None:
        started = time.monotonic()
        for index in range(resume, len(plan.statements)):
            try:
                self.client.command(plan.statements[index])
            except QueryError as exc:
                self._record(plan, "failed", index, str(exc), started)
                raise MigrationError(
                    f"migration {plan.file.path.name} failed at statement "
                    f"{index + 1}/{len(plan.statements)}: {str(exc).splitlines()[0][:300]}. "
                    "Fix the cause and run `adpulse schema migrate` again; it resumes there"
                ) from None
            if progress:
                progress(plan, index + 1)
        self._record(plan, "applied", len(plan.statements), "", started)

    def _record(
        self, plan: PlannedMigration, status: str, done: int, error: str, started: float
    ) -> None:
        self.client.insert(
            names.MIGRATIONS_TABLE,
            {
                "version": [plan.file.version],
                "name": [plan.file.name],
                "checksum": [plan.checksum],
                "status": [status],
                "statements_done": [done],
                "statements_total": [len(plan.statements)],
                "error": [error],
                "applied_at": [int(time.time())],
                "duration_ms": [int((time.monotonic() - started) * 1000)],
                "seq": [time.time_ns()],
            },
        )


class MigrationLock:
    """Exclusive lock: a table that only one concurrent CREATE TABLE can create.

    Taken on the server the client is connected to, which is enough because migrations run
    from one place (the CLI against the first host). A crashed migrator leaves the lock
    behind; `adpulse schema unlock` removes it after a person checked no migrator runs.
    """

    def __init__(self, client: ClickHouseClient, database: str) -> None:
        self.client = client
        self.table = f"{database}.{names.MIGRATION_LOCK_TABLE}"
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"

    def __enter__(self) -> MigrationLock:
        try:
            self.client.command(
                f"CREATE TABLE {self.table} (owner String, acquired_at DateTime) ENGINE = Log"
            )
        except QueryError as exc:
            if exc.code != TABLE_EXISTS:
                raise
            raise MigrationError(
                f"another migration holds the lock ({holder(self.client, self.table)}); wait for "
                "it, or if it crashed run `adpulse schema unlock`"
            ) from None
        self.client.insert(
            names.MIGRATION_LOCK_TABLE,
            {"owner": [self.owner], "acquired_at": [int(time.time())]},
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.client.command(f"DROP TABLE IF EXISTS {self.table}")


def holder(client: ClickHouseClient, table: str) -> str:
    """Who holds the lock, for messages; the owner row may not be written yet."""
    try:
        rows = client.query(f"SELECT owner, acquired_at FROM {table} LIMIT 1")
    except QueryError:
        return "holder unknown"
    if not rows:
        return "holder still starting"
    owner, acquired = rows[0]
    when = acquired.astimezone(UTC).isoformat() if isinstance(acquired, datetime) else acquired
    return f"held by {owner} since {when}"


def unlock(client: ClickHouseClient, database: str) -> str | None:
    """Break a stale lock; returns who held it, or None if there was none."""
    table = f"{database}.{names.MIGRATION_LOCK_TABLE}"
    exists = client.query(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        {"db": database, "t": names.MIGRATION_LOCK_TABLE},
    )
    if not exists[0][0]:
        return None
    who = holder(client, table)
    client.command(f"DROP TABLE IF EXISTS {table}")
    return who
