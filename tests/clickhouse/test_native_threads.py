"""One NativeClient shared by threads, as the API's thread pool shares it, against a real
clickhouse-server (Debian's 18.16: plain SELECTs only)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from adpulse.clickhouse.native import NativeClient
from adpulse.clickhouse.url import NativeTarget


def test_threads_sharing_one_client_each_get_their_own_answers(native_port: int) -> None:
    client = NativeClient(NativeTarget((("127.0.0.1", native_port),), database="default"))

    def ask(n: int) -> tuple[int, list[tuple[int, ...]]]:
        sql = f"SELECT number * {n} FROM system.numbers LIMIT {n % 50 + 1000}"
        return n, client.query(sql)

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(ask, range(1, 161)))
    finally:
        client.close()
    for n, rows in answers:
        assert len(rows) == n % 50 + 1000
        assert rows[-1] == ((len(rows) - 1) * n,)
