"""The metadata store's tables as the code reads them today (migrations.py builds them)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
)

STATUSES = ("active", "paused", "archived")

metadata = MetaData()

campaigns = Table(
    "campaigns",
    metadata,
    Column("campaign_id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("advertiser", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("daily_budget_micros", BigInteger, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("status IN ('active', 'paused', 'archived')", name="campaigns_status"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

ledger = Table(
    "metadata_migrations",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", String(100), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)
