"""Open the metadata store: Postgres when `postgres_url` is set, else SQLite under .adpulse/.

Both go through the same SQLAlchemy Core statements; only the engine differs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from adpulse.errors import AdpulseError, ConfigError
from adpulse.settings import Settings

SQLITE_FILE = "metadata.sqlite3"
_POSTGRES_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg")


class MetadataUnavailable(AdpulseError):
    """The metadata store could not be reached."""


def store_url(settings: Settings) -> str:
    """SQLAlchemy URL for the settings: psycopg 3 for Postgres, a file for SQLite."""
    if settings.postgres_url is None:
        return f"sqlite:///{(settings.state_dir / SQLITE_FILE).resolve()}"
    raw = settings.postgres_url.get_secret_value()
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme not in _POSTGRES_SCHEMES:
        raise ConfigError(
            f"ADPULSE_POSTGRES_URL: scheme {scheme!r} is not Postgres; use "
            "postgresql://user:password@host:5432/dbname"
        )
    return f"postgresql+psycopg://{rest}"


class MetadataStore:
    """An engine plus the one place that turns connection failures into a readable error."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def where(self) -> str:
        """The store's URL without its password, for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction; unreachable stores raise MetadataUnavailable."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise self._unavailable(exc) from None

    def ping(self) -> None:
        with self.begin() as conn:
            conn.execute(text("SELECT 1"))

    def migrate(self) -> list[int]:
        from adpulse.metadata.migrations import migrate

        try:
            return migrate(self.engine)
        except OperationalError as exc:
            raise self._unavailable(exc) from None

    def _unavailable(self, exc: OperationalError) -> MetadataUnavailable:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        return MetadataUnavailable(
            f"metadata store {self.where} unreachable: {reason}; check ADPULSE_POSTGRES_URL"
        )

    def close(self) -> None:
        self.engine.dispose()


def create_store_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError("ADPULSE_POSTGRES_URL is not a valid database URL") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 15})
        _sqlite_transactions(engine)
        return engine
    return create_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        connect_args={"connect_timeout": 5},
    )


def _sqlite_transactions(engine: Engine) -> None:
    """Let SQLAlchemy, not pysqlite, start transactions, so DDL is transactional too.

    The SQLAlchemy documentation's recipe for pysqlite; WAL lets readers run beside a writer.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")


def open_store(settings: Settings, *, migrate: bool = True) -> MetadataStore:
    """The store the settings name, migrated to the current version unless told otherwise."""
    store = MetadataStore(create_store_engine(store_url(settings)))
    if migrate:
        store.migrate()
    return store
