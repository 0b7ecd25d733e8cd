"""Native-protocol backend over `clickhouse-driver`, for real servers (one or several hosts)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import UUID

from adpulse.clickhouse.client import Params, QueryError, QuerySettings, Row, UnavailableError

if TYPE_CHECKING:
    from adpulse.clickhouse.client import Int64Matrix
from adpulse.clickhouse.identifiers import validate_identifier
from adpulse.clickhouse.url import NativeTarget


class NativeClient:
    """`ClickHouseClient` over the native protocol; fails over between the listed hosts.

    Safe to share between threads: each thread gets its own connection. clickhouse-driver's
    Client is one socket and not thread-safe; the API runs up to 8 queries at once from a
    thread pool, and two threads on one socket read each other's packets (seen on a deployed
    host as `[Errno 9] Bad file descriptor`, tests/clickhouse/test_native_threads.py)."""

    topology_hint = "native"

    def __init__(self, target: NativeTarget, *, connect_timeout: float = 5.0) -> None:
        from clickhouse_driver import Client

        (host, port), *alternates = target.hosts
        self.database = target.database
        self.hosts = target.hosts
        self._new = partial(
            Client,
            host=host,
            port=port,
            alt_hosts=",".join(f"{h}:{p}" for h, p in alternates) or None,
            # Our SQL qualifies every table, and the database may not exist yet (first migrate).
            database="default",
            user=target.user,
            password=target.password,
            secure=target.secure,
            connect_timeout=connect_timeout,
            send_receive_timeout=300,
            settings={"server_side_params": True},
        )
        self._local = threading.local()
        self._lock = threading.Lock()
        self._clients: list[Any] = []

    @property
    def _client(self) -> Any:
        """This thread's connection (made on first use; it connects on its first query)."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._new()
            with self._lock:
                self._clients.append(client)
        return client

    def _execute(self, sql: str, data: Any, settings: QuerySettings | None, **kw: Any) -> Any:
        from clickhouse_driver import errors

        try:
            return self._client.execute(sql, data, settings=dict(settings or {}), **kw)
        except errors.ServerException as exc:
            # Old servers append a C++ stack trace; the first part is what a person needs.
            raise QueryError(exc.message.split("Stack trace:")[0].strip(), exc.code) from None
        except (errors.NetworkError, errors.SocketTimeoutError, OSError, EOFError) as exc:
            hosts = ", ".join(f"{h}:{p}" for h, p in self.hosts)
            raise UnavailableError(f"ClickHouse at {hosts} unreachable: {exc}") from None

    def command(
        self, sql: str, params: Params | None = None, settings: QuerySettings | None = None
    ) -> None:
        self._execute(sql, dict(params) if params else None, settings)

    def query(
        self, sql: str, params: Params | None = None, settings: QuerySettings | None = None
    ) -> list[Row]:
        rows = self._execute(sql, dict(params) if params else None, settings)
        return [tuple(_normalise(v) for v in row) for row in rows]

    def query_matrix(
        self,
        sql: str,
        params: Params | None = None,
        settings: QuerySettings | None = None,
        *,
        columns: int,
    ) -> Int64Matrix:
        import numpy as np

        rows, types = self._execute(
            sql, dict(params) if params else None, settings, with_column_types=True
        )
        if any(t != "Int64" for _, t in types) or len(types) != columns:
            raise QueryError(
                f"query_matrix needs {columns} Int64 columns, the query returns {types}"
            )
        return np.asarray(rows, dtype=np.int64).reshape(len(rows), columns)

    def insert(
        self,
        table: str,
        columns: Mapping[str, Sequence[Any]],
        settings: QuerySettings | None = None,
    ) -> int:
        names = [validate_identifier(n, what=f"column of {table}") for n in columns]
        data = [list(columns[n]) for n in names]
        if not data or not data[0]:
            return 0
        table = f"{self.database}.{validate_identifier(table)}"
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES"
        self._execute(sql, data, settings, columnar=True)
        return len(data[0])

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.disconnect()


def _normalise(value: Any) -> Any:
    """Match the embedded backend: UUIDs as str, datetimes timezone-aware UTC."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value
