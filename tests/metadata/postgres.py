"""A throwaway database on the machine's Postgres (127.0.0.1:5432, trust auth)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

SERVER = "postgres@127.0.0.1:5432"
START_HINT = (
    "start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
    "(scripts/services.sh does this)"
)


@contextmanager
def temporary_database() -> Iterator[str]:
    """Create `adpulse_test_<random>`, yield its postgresql:// URL, drop it afterwards."""
    name = f"adpulse_test_{secrets.token_hex(6)}"
    admin = create_engine(f"postgresql+psycopg://{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.fail(f"Postgres at {SERVER} is not reachable ({exc.orig}); {START_HINT}")
    try:
        yield f"postgresql://{SERVER}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
