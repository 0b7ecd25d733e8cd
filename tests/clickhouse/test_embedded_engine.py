"""The embedded engine's own settings: caches sized for a shared laptop, not a server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from adpulse.clickhouse.client import ClickHouseClient
from adpulse.clickhouse.embedded import ENGINE_DEFAULTS
from adpulse.clickhouse.url import EmbeddedTarget, parse_clickhouse_url
from adpulse.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CACHES = ("mark_cache_size", "primary_index_cache_size", "index_mark_cache_size")


def _server_settings(client: ClickHouseClient) -> dict[str, int]:
    rows = client.query(
        "SELECT name, value FROM system.server_settings WHERE name IN {names:Array(String)}",
        {"names": list(CACHES)},
    )
    return {name: int(value) for name, value in rows}


def test_the_engine_opens_with_capped_caches(chdb_client: ClickHouseClient) -> None:
    # chDB's own defaults are 5 GiB each: these would grow `adpulse up` for hours.
    assert _server_settings(chdb_client) == {k: int(ENGINE_DEFAULTS[k]) for k in CACHES}
    assert all(int(ENGINE_DEFAULTS[k]) <= 256 * 2**20 for k in CACHES)


def test_a_url_setting_overrides_a_default(tmp_path: Path) -> None:
    # Another process: the engine settings are fixed when a process first opens a path.
    url = f"chdb://{tmp_path}/db?mark_cache_size=1048576&database=other"
    code = (
        "from adpulse.clickhouse.connection import connect\n"
        f"c = connect({url!r})\n"
        'print(c.database, c.query("SELECT value FROM system.server_settings '
        "WHERE name = 'mark_cache_size'\")[0][0])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["other", "1048576"]


def test_url_query_becomes_engine_settings() -> None:
    target = parse_clickhouse_url("chdb:///d?database=x&mark_cache_size=5&max_threads=2")
    assert target == EmbeddedTarget("/d", "x", (("mark_cache_size", "5"), ("max_threads", "2")))


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("chdb:///d?mark_cache_size=1;DROP", "mark_cache_size"),
        ("chdb:///d?bad-name=1", "bad-name"),
    ],
)
def test_a_bad_engine_setting_is_refused_by_name(url: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        parse_clickhouse_url(url)
