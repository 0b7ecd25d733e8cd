"""Versioned migrations of the metadata store, recorded in `metadata_migrations`.

Each migration declares the tables as they were at its version (not as tables.py has them
now), so replaying history on a new database builds what older databases have. Migrations run
in one transaction (DDL is transactional on Postgres and, with store.py's BEGIN, on SQLite);
on Postgres an advisory lock keeps two starting API replicas from migrating at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
    text,
)

from adpulse.errors import MigrationError
from adpulse.metadata.tables import ledger

# Any constant unique to adpulse: pg_advisory_xact_lock takes one bigint.
_LOCK_KEY = 0x0ADB_0150


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    upgrade: Callable[[Connection], None]


def _v1_campaigns_and_api_keys(conn: Connection) -> None:
    v1 = MetaData()
    Table(
        "campaigns",
        v1,
        Column("campaign_id", BigInteger, primary_key=True, autoincrement=False),
        Column("name", String(200), nullable=False),
        Column("advertiser", String(200), nullable=False),
        Column("status", String(16), nullable=False),
        Column("daily_budget_micros", BigInteger, nullable=True),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        CheckConstraint("status IN ('active', 'paused', 'archived')", name="campaigns_status"),
    )
    Table(
        "api_keys",
        v1,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(100), nullable=False),
        Column("prefix", String(16), nullable=False),
        Column("key_hash", String(64), nullable=False, unique=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("revoked_at", DateTime(timezone=True), nullable=True),
    )
    v1.create_all(conn)


MIGRATIONS = (Migration(1, "campaigns_and_api_keys", _v1_campaigns_and_api_keys),)


def migrate(engine: Engine, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply pending migrations in order; returns the versions applied now."""
    known = {m.version for m in migrations}
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        ledger.create(conn, checkfirst=True)
        applied = {row.version for row in conn.execute(select(ledger.c.version))}
        unknown = sorted(applied - known)
        if unknown:
            raise MigrationError(
                f"the metadata store has migrations {unknown} that this adpulse does not know: "
                "it was migrated by a newer version; upgrade adpulse"
            )
        done = []
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version in applied:
                continue
            migration.upgrade(conn)
            conn.execute(
                insert(ledger).values(
                    version=migration.version, name=migration.name, applied_at=datetime.now(UTC)
                )
            )
            done.append(migration.version)
    return done
