"""chDB backend: ClickHouse in this process over a data directory.

chDB lets one process, not two, open a data path, so the clients of a path in one process
share a pool of sessions on it: the consumer, the API and the migrator of `adpulse up` all
borrow from the same pool.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson

from adpulse.clickhouse.client import Params, QueryError, QuerySettings, Row

if TYPE_CHECKING:
    from adpulse.clickhouse.client import Int64Matrix
from adpulse.clickhouse.identifiers import validate_identifier
from adpulse.clickhouse.url import EmbeddedTarget
from adpulse.errors import AdpulseError

_ERROR_CODE = re.compile(r"Code: (\d+)")
# chDB runs the queries of different sessions on one path in parallel (and releases the GIL),
# while one session runs one at a time: the API's concurrent reads and the consumer's inserts
# of `adpulse up` would otherwise queue behind each other. Sessions open lazily, up to this.
SESSIONS_PER_PATH = 4
# chDB starts with a server's cache sizes (5 GiB each for marks, primary indexes and index
# marks, bounded only by 90% of RAM). An embedded engine shares a laptop with everything
# else, so they are capped here; in the soak runs of `bench soak` they never got near these
# caps. A `chdb://` URL's query overrides any of them, e.g. `?mark_cache_size=1073741824`.
ENGINE_DEFAULTS = {
    "mark_cache_size": str(256 * 2**20),
    "primary_index_cache_size": str(256 * 2**20),
    "index_mark_cache_size": str(64 * 2**20),
}


class ChdbMissingError(AdpulseError):
    """A `chdb://` URL was given where chDB is not installed (hosts run without it)."""


def _chdb_session() -> Any:
    """chDB's `session` module; chDB is the `local` extra, so a release's hosts lack it."""
    try:
        from chdb import session
    except ModuleNotFoundError as exc:
        if exc.name != "chdb":
            raise  # chDB is there but broken: its own error says more than ours would
        raise ChdbMissingError(
            "the embedded ClickHouse (chDB) is not installed: install the `local` extra "
            "(`pip install 'adpulse[local]'`), or point ADPULSE_CLICKHOUSE_URL at a server"
        ) from None
    return session


class _SessionPool:
    """The chDB sessions of one data path. A session is lent to one caller at a time, so a
    failed query's leftover output is cleared by that caller before anyone else reads."""

    def __init__(self, path: str, size: int, engine: Mapping[str, str]) -> None:
        self.path = path
        self.size = size
        self.connection = f"{path}?{urlencode({**ENGINE_DEFAULTS, **engine})}"
        self.users = 0
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._opened: list[Any] = []
        self._lock = threading.Lock()

    @contextmanager
    def session(self) -> Iterator[Any]:
        session = self._take()
        try:
            yield session
        finally:
            self._idle.put(session)

    def _take(self) -> Any:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if len(self._opened) < self.size:
                opened = _chdb_session().Session(self.connection)
                self._opened.append(opened)
                return opened
        return self._idle.get()

    def close(self) -> None:
        for opened in self._opened:
            opened.close()
        self._opened.clear()


_pools: dict[str, _SessionPool] = {}
_registry_lock = threading.Lock()


def _open_pool(path: str, engine: Mapping[str, str]) -> _SessionPool:
    """The path's pool; the engine settings of the first client to open a path hold for all."""
    with _registry_lock:
        pool = _pools.get(path)
        if pool is None:
            Path(path).mkdir(parents=True, exist_ok=True)
            pool = _pools[path] = _SessionPool(path, SESSIONS_PER_PATH, engine)
        pool.users += 1
        return pool


def _release_pool(path: str) -> None:
    with _registry_lock:
        pool = _pools[path]
        pool.users -= 1
        if pool.users == 0:
            del _pools[path]
            pool.close()


class EmbeddedClient:
    """`ClickHouseClient` over chDB. Thread-safe: each call borrows one of the path's sessions."""

    topology_hint = "embedded"

    def __init__(self, target: EmbeddedTarget) -> None:
        self.path = str(Path(target.path).resolve())
        self.database = target.database
        _chdb_session()  # before the pool: a missing chDB leaves no pool or data folder behind
        self._pool = _open_pool(self.path, dict(target.engine))
        self._insert_plans: dict[str, str] = {}
        self._closed = False
        # The session (and its current database) is shared by every client of this path,
        # so callers qualify table names with `database` instead of relying on USE.
        self.command(f"CREATE DATABASE IF NOT EXISTS {self.database}")

    def _run(self, sql: str, fmt: str, params: Params | None) -> Any:
        with self._pool.session() as session:
            try:
                return session.query(sql, fmt, params=_bind(params))
            except RuntimeError as exc:  # chDB's errors carry the server's text and code
                _clear_partial_output(session)
                raise _query_error(exc) from None

    def command(
        self, sql: str, params: Params | None = None, settings: QuerySettings | None = None
    ) -> None:
        self._run(_with_settings(sql, settings), "Null", params)

    def query(
        self, sql: str, params: Params | None = None, settings: QuerySettings | None = None
    ) -> list[Row]:
        merged = {"output_format_json_quote_64bit_integers": 0, **(settings or {})}
        result = self._run(_with_settings(sql, merged), "JSONCompact", params)
        payload = orjson.loads(result.bytes() or b'{"meta":[],"data":[]}')
        converters = [_converter(col["type"]) for col in payload["meta"]]
        return [
            tuple(conv(value) for conv, value in zip(converters, row, strict=True))
            for row in payload["data"]
        ]

    def query_matrix(
        self,
        sql: str,
        params: Params | None = None,
        settings: QuerySettings | None = None,
        *,
        columns: int,
    ) -> Int64Matrix:
        # Native: columns as contiguous arrays, which chDB writes in half the time of rows.
        result = self._run(_with_settings(sql, settings), "Native", params)
        return _int64_matrix(result.bytes(), columns)

    def insert(
        self,
        table: str,
        columns: Mapping[str, Sequence[Any]],
        settings: QuerySettings | None = None,
    ) -> int:
        names = list(columns)
        lengths = {len(columns[name]) for name in names}
        if len(lengths) != 1:
            raise ValueError(f"columns for {table} differ in length: {sorted(lengths)}")
        rows = lengths.pop()
        if rows == 0:
            return 0
        select = self._insert_select(table, names)
        data = {name: list(columns[name]) for name in names}  # noqa: F841  (read by chDB)
        sql = f"INSERT INTO {self.database}.{validate_identifier(table)} ({', '.join(names)})"
        sql = _with_settings(sql, settings) + f" SELECT {select} FROM Python(data)"
        with self._pool.session() as session:
            try:
                # chDB finds `data` by name in this frame.
                session.query(sql, "Null")
            except RuntimeError as exc:
                _clear_partial_output(session)
                raise _query_error(exc) from None
        return rows

    def _insert_select(self, table: str, names: list[str]) -> str:
        key = f"{table}:{','.join(names)}"
        if key not in self._insert_plans:
            types: dict[str, str] = dict(
                self.query(
                    "SELECT name, type FROM system.columns WHERE database = {db:String} "
                    "AND table = {t:String}",
                    {"db": self.database, "t": table},
                )
            )
            parts = []
            for name in names:
                validate_identifier(name, what=f"column of {table}")
                col_type = types.get(name, "")
                if col_type.startswith("DateTime64(3"):
                    parts.append(f"fromUnixTimestamp64Milli({name}, 'UTC') AS {name}")
                else:
                    parts.append(name)
            self._insert_plans[key] = ", ".join(parts)
        return self._insert_plans[key]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _release_pool(self.path)


def _clear_partial_output(session: Any) -> None:
    """chDB can leave a failed query's partial output for the session's next result; a
    statement with no output clears it, so the session's next borrower parses its own answer."""
    try:
        session.query("SELECT 1", "Null")
    except RuntimeError:
        pass


def _query_error(exc: RuntimeError) -> QueryError:
    text = str(exc)
    code = _ERROR_CODE.search(text)
    return QueryError(text, int(code.group(1)) if code else None)


def _bind(params: Params | None) -> dict[str, Any] | None:
    """chDB parses parameter values in TSV-escaped form, so escape strings the same way."""
    if not params:
        return None
    return {key: _param_text(value) for key, value in params.items()}


def _param_text(value: Any) -> Any:
    if isinstance(value, str):
        return value.translate(_TSV_ESCAPES)
    if isinstance(value, list | tuple):
        # Arrays travel as ClickHouse literals, e.g. ['a', 'b'].
        return "[" + ", ".join(_setting_literal(v) for v in value) + "]"
    return value


_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"})


def _int64_matrix(data: bytes, columns: int) -> Int64Matrix:
    """ClickHouse's Native format of `columns` Int64 columns as a (rows, columns) array.

    Native is a sequence of blocks: column and row counts, then per column its name, its
    type and its values; an empty answer is no block at all."""
    import numpy as np

    blocks = []
    offset = 0
    while offset < len(data):
        offset, count = _varint(data, offset)
        offset, rows = _varint(data, offset)
        block = []
        for _ in range(count):
            offset, _name = _string(data, offset)
            offset, kind = _string(data, offset)
            if kind != "Int64":
                raise QueryError(f"query_matrix needs Int64 columns, the query returns {kind}")
            block.append(np.frombuffer(data, dtype="<i8", count=rows, offset=offset))
            offset += 8 * rows
        if count != columns:
            raise QueryError(f"query_matrix expected {columns} columns, the query returns {count}")
        blocks.append(np.column_stack(block) if rows else np.zeros((0, columns), np.int64))
    if not blocks:
        return np.zeros((0, columns), dtype=np.int64)
    return np.concatenate(blocks).astype(np.int64, copy=False)


def _string(data: bytes, offset: int) -> tuple[int, str]:
    offset, size = _varint(data, offset)
    return offset + size, data[offset : offset + size].decode()


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    """(offset after it, value) of the LEB128 integer at `offset`."""
    value = shift = 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return offset, value


def _with_settings(sql: str, settings: QuerySettings | None) -> str:
    if not settings:
        return sql
    rendered = ", ".join(
        f"{validate_identifier(k, what='setting')} = {_setting_literal(v)}"
        for k, v in settings.items()
    )
    return f"{sql} SETTINGS {rendered}"


def _setting_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    return "'" + text.translate(_TSV_ESCAPES).replace("'", "\\'") + "'"


def _parse_datetime(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _identity(value: Any) -> Any:
    return value


def _converter(ch_type: str) -> Any:
    base = ch_type.removeprefix("LowCardinality(").removeprefix("Nullable(")
    if base.startswith(("DateTime", "Date")):
        return lambda v: None if v is None else _parse_datetime(v)
    return _identity
