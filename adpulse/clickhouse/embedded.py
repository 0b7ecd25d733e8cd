"""chDB backend: ClickHouse in this process over a data directory.

chDB lets one process open a data path once, so sessions are shared per path: the consumer,
the API and the migrator of `adpulse up` all talk through the same session.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from adpulse.clickhouse.client import Params, QueryError, QuerySettings, Row
from adpulse.clickhouse.identifiers import validate_identifier
from adpulse.clickhouse.url import EmbeddedTarget

_sessions: dict[str, Any] = {}
_refcounts: dict[str, int] = {}
_registry_lock = threading.Lock()
_ERROR_CODE = re.compile(r"Code: (\d+)")


def _open_session(path: str) -> Any:
    from chdb import session

    with _registry_lock:
        if path not in _sessions:
            Path(path).mkdir(parents=True, exist_ok=True)
            _sessions[path] = session.Session(path)  # type: ignore[no-untyped-call]
            _refcounts[path] = 0
        _refcounts[path] += 1
        return _sessions[path]


def _release_session(path: str) -> None:
    with _registry_lock:
        _refcounts[path] -= 1
        if _refcounts[path] == 0:
            _sessions.pop(path).close()
            del _refcounts[path]


class EmbeddedClient:
    """`ClickHouseClient` over chDB. Thread-safe: calls are serialised per process."""

    topology_hint = "embedded"

    def __init__(self, target: EmbeddedTarget) -> None:
        self.path = str(Path(target.path).resolve())
        self.database = target.database
        self._session = _open_session(self.path)
        self._lock = threading.RLock()
        self._insert_plans: dict[str, str] = {}
        self._closed = False
        # The session (and its current database) is shared by every client of this path,
        # so callers qualify table names with `database` instead of relying on USE.
        self.command(f"CREATE DATABASE IF NOT EXISTS {self.database}")

    def _run(self, sql: str, fmt: str, params: Params | None) -> Any:
        with self._lock:
            try:
                return self._session.query(sql, fmt, params=_bind(params))
            except RuntimeError as exc:  # chDB's errors carry the server's text and code
                self._clear_partial_output()
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
        with self._lock:
            try:
                # chDB finds `data` by name in this frame.
                self._session.query(sql, "Null")
            except RuntimeError as exc:
                self._clear_partial_output()
                raise _query_error(exc) from None
        return rows

    def _clear_partial_output(self) -> None:
        """chDB can leave a failed query's partial output for the session's next result;
        a statement with no output clears it, so the next caller (say, the API sharing the
        consumer's session) parses its own answer."""
        try:
            self._session.query("SELECT 1", "Null")
        except RuntimeError:
            pass

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
            _release_session(self.path)


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
