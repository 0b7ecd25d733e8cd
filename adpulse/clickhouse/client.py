"""The one small interface every adpulse component uses to talk to ClickHouse.

Two backends implement it: `EmbeddedClient` (chDB, in-process) and `NativeClient`
(`clickhouse-driver`, native protocol, several hosts). SQL uses ClickHouse's own server-side
parameter syntax, `{name:Type}`, on both, so no value is ever formatted into a statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # numpy costs 0.2 s to import; `adpulse --help` must not pay it
    import numpy as np

    Int64Matrix = np.ndarray[tuple[int, int], np.dtype[np.int64]]

from adpulse.errors import AdpulseError

Row = tuple[Any, ...]
Params = Mapping[str, Any]
QuerySettings = Mapping[str, Any]


class QueryError(AdpulseError):
    """ClickHouse rejected a statement. Retrying the same statement will not help."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class UnavailableError(AdpulseError):
    """ClickHouse could not be reached or timed out. The same call may succeed later."""


class ClickHouseClient(Protocol):
    """What adpulse needs from ClickHouse.

    Every method blocks until the server answers. Network failures raise `UnavailableError`
    (retryable); statements the server refuses raise `QueryError` (not retryable).
    """

    database: str
    """The database adpulse's tables live in. SQL qualifies table names with it: unqualified
    names are not portable across backends (chDB shares one session per process)."""

    topology_hint: str
    """'embedded' or 'native': for messages only; behaviour is the same."""

    def command(
        self, sql: str, params: Params | None = None, settings: QuerySettings | None = None
    ) -> None:
        """Run a statement that returns nothing (DDL, INSERT ... SELECT)."""

    def query(
        self, sql: str, params: Params | None = None, settings: QuerySettings | None = None
    ) -> list[Row]:
        """Run a SELECT. Values come back as int, float, str (UUIDs and Enums too),
        and timezone-aware `datetime` for DateTime columns."""

    def query_matrix(
        self,
        sql: str,
        params: Params | None = None,
        settings: QuerySettings | None = None,
        *,
        columns: int,
    ) -> Int64Matrix:
        """Run a SELECT of `columns` Int64 columns; its rows as a (rows, columns) int64 array.

        For bulk reads (api/hot/reads.py): no Python object per value. Other column types, or
        another number of them, raise `QueryError`."""

    def insert(
        self,
        table: str,
        columns: Mapping[str, Sequence[Any]],
        settings: QuerySettings | None = None,
    ) -> int:
        """Insert equal-length columns into `database.table` as one block; returns rows.

        DateTime64(3) values are epoch milliseconds (int). `settings` carries
        `insert_deduplication_token` for idempotent retries. Returns only after the server
        acknowledged the write, which is the point a consumer may commit offsets.
        """

    def close(self) -> None:
        """Release connections. The client must not be used afterwards."""
