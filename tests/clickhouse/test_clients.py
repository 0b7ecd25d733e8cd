"""Both backends of the client interface behave alike on what adpulse uses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adpulse.clickhouse.client import ClickHouseClient, QueryError, UnavailableError
from adpulse.clickhouse.connection import connect
from tests.support.clickhouse_server import free_port


def test_embedded_insert_and_query_types(chdb_db: ClickHouseClient) -> None:
    db = chdb_db.database
    chdb_db.command(
        f"CREATE TABLE {db}.t (id UUID, kind Enum8('a' = 1, 'b' = 2), "
        "at DateTime64(3, 'UTC'), n UInt64) ENGINE = MergeTree ORDER BY at"
    )
    rows = chdb_db.insert(
        "t",
        {
            "id": ["8b0c1a9e-3f0e-4a43-9a57-0c5b1f0b6e21"],
            "kind": ["b"],
            "at": [1_795_780_800_123],
            "n": [2**63 - 1],
        },
    )
    assert rows == 1
    assert chdb_db.query(f"SELECT id, kind, at, n FROM {db}.t") == [
        (
            "8b0c1a9e-3f0e-4a43-9a57-0c5b1f0b6e21",
            "b",
            datetime(2026, 11, 27, 12, 0, 0, 123_000, tzinfo=UTC),
            2**63 - 1,
        )
    ]


@pytest.mark.parametrize(
    "hostile", ["x' OR 1=1 --", "a\\'; DROP TABLE t; --", "line\nbreak\ttab", "{x:String}"]
)
def test_parameters_are_bound_not_spliced(chdb_db: ClickHouseClient, hostile: str) -> None:
    assert chdb_db.query("SELECT {v:String}, length({v:String})", {"v": hostile}) == [
        (hostile, len(hostile.encode()))
    ]


def test_embedded_errors_carry_the_server_code(chdb_db: ClickHouseClient) -> None:
    with pytest.raises(QueryError) as info:
        chdb_db.query(f"SELECT * FROM {chdb_db.database}.nope")
    assert info.value.code == 60


def test_native_round_trip_and_failover(native_port: int) -> None:
    dead = free_port()
    client = connect(f"clickhouse://default@127.0.0.1:{dead},127.0.0.1:{native_port}/default")
    try:
        client.command("DROP TABLE IF EXISTS default.rt")
        client.command(
            "CREATE TABLE default.rt (id UUID, s String, at DateTime) "
            "ENGINE = MergeTree() ORDER BY at"
        )
        client.insert(
            "rt",
            {
                "id": ["8b0c1a9e-3f0e-4a43-9a57-0c5b1f0b6e21"],
                "s": ["x"],
                "at": [1_795_780_800],
            },
        )
        assert client.query("SELECT id, s, at FROM default.rt") == [
            (
                "8b0c1a9e-3f0e-4a43-9a57-0c5b1f0b6e21",
                "x",
                datetime(2026, 11, 27, 12, 0, tzinfo=UTC),
            )
        ]
        with pytest.raises(QueryError) as info:
            client.query("SELECT * FROM default.nope")
        assert info.value.code == 60
        assert "Stack trace" not in str(info.value)
    finally:
        client.close()


def test_native_unreachable_is_retryable_error() -> None:
    port = free_port()
    client = connect(f"clickhouse://default@127.0.0.1:{port}/default")
    with pytest.raises(UnavailableError, match=f"127.0.0.1:{port} unreachable"):
        client.query("SELECT 1")


def test_array_parameters(chdb_db: ClickHouseClient) -> None:
    values = ["a/0", "it's", "back\\slash"]
    assert chdb_db.query("SELECT {v:Array(String)}", {"v": values}) == [(values,)]
    assert chdb_db.query("SELECT {v:Array(UInt32)}", {"v": [1, 2]}) == [([1, 2],)]


def test_concurrent_queries_on_one_path_each_get_their_own_answer(
    chdb_db: ClickHouseClient,
) -> None:
    """Threads borrow separate chDB sessions of the path; bound parameters and results never
    cross between queries running at the same time (chDB's sessions run in parallel)."""
    from concurrent.futures import ThreadPoolExecutor

    from adpulse.clickhouse.embedded import SESSIONS_PER_PATH

    db = chdb_db.database
    chdb_db.command(f"CREATE TABLE {db}.n (n UInt64) ENGINE = MergeTree ORDER BY n")
    chdb_db.command(f"INSERT INTO {db}.n SELECT number FROM numbers(100000)")

    def ask(i: int) -> tuple[int, int, int, str]:
        start, end = i * 97, i * 97 + 1 + i % 50
        [(count, total, tag)] = chdb_db.query(
            f"SELECT count(), sum(n), {{tag:String}} FROM {db}.n "
            "WHERE n >= {a:UInt64} AND n < {b:UInt64}",
            {"a": start, "b": end, "tag": f"q{i}"},
        )
        return i, count, total, tag

    with ThreadPoolExecutor(SESSIONS_PER_PATH * 2) as pool:
        answers = list(pool.map(ask, range(400)))
    for i, count, total, tag in answers:
        start, end = i * 97, i * 97 + 1 + i % 50
        assert (count, total, tag) == (end - start, sum(range(start, end)), f"q{i}")


def test_a_failed_query_leaves_nothing_for_the_next_borrower(chdb_db: ClickHouseClient) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def fail_then_ask(i: int) -> list[tuple[object, ...]]:
        with pytest.raises(QueryError):
            chdb_db.query("SELECT throwIf(number = 3) FROM numbers(10) SETTINGS max_block_size=1")
        return chdb_db.query("SELECT {i:UInt32}", {"i": i})

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(fail_then_ask, range(40))) == [[(i,)] for i in range(40)]


MATRIX_SQL = "SELECT toInt64(number) AS n, toInt64(number * -3) AS m FROM system.numbers LIMIT 4"


def test_query_matrix_returns_int64_rows_on_both_backends(
    chdb_db: ClickHouseClient, native_port: int
) -> None:
    native = connect(f"clickhouse://default@127.0.0.1:{native_port}/default")
    try:
        for client in (chdb_db, native):
            matrix = client.query_matrix(MATRIX_SQL, columns=2)
            assert matrix.dtype.name == "int64"
            assert matrix.tolist() == [[0, 0], [1, -3], [2, -6], [3, -9]]
            empty = client.query_matrix(MATRIX_SQL.replace("LIMIT 4", "LIMIT 0"), columns=2)
            assert empty.shape == (0, 2)
            with pytest.raises(QueryError, match="Int64 columns"):
                client.query_matrix("SELECT toInt32(1), toInt64(2)", columns=2)
            with pytest.raises(QueryError, match="columns"):
                client.query_matrix(MATRIX_SQL, columns=3)
    finally:
        native.close()


def test_query_matrix_binds_parameters(chdb_db: ClickHouseClient) -> None:
    matrix = chdb_db.query_matrix("SELECT toInt64({x:Int64}) + 1", {"x": 2**40}, columns=1)
    assert matrix.tolist() == [[2**40 + 1]]


def test_query_matrix_joins_the_blocks_of_a_large_answer(chdb_db: ClickHouseClient) -> None:
    sql = "SELECT toInt64(number), toInt64(number * 2) FROM numbers(300000)"
    matrix = chdb_db.query_matrix(f"{sql} SETTINGS max_block_size = 65536", columns=2)
    assert matrix.shape == (300_000, 2)
    assert matrix[:, 0].tolist() == list(range(300_000))
    assert (matrix[:, 1] == 2 * matrix[:, 0]).all()
