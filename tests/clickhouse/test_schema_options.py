"""Settings -> schema options and topology: the one choice every schema command makes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adpulse.clickhouse.schema import SchemaOptions, schema_options, schema_topology
from adpulse.errors import ConfigError
from adpulse.settings import load_settings
from adpulse.topology import single, three_replicas

SERVER = "clickhouse://admin@ch-1:9000/analytics"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("ADPULSE_")]:
        monkeypatch.delenv(key)


def test_options_take_the_database_from_the_url_and_retention_from_settings() -> None:
    settings = load_settings(
        clickhouse_url=SERVER, retention_days=30, rollup_retention_days=400, live_retention_days=3
    )
    assert schema_options(settings) == SchemaOptions(
        database="analytics", retention_days=30, rollup_retention_days=400, live_retention_days=3
    )


def test_embedded_database_comes_from_its_query_string() -> None:
    settings = load_settings(clickhouse_url="chdb://data?database=t7")
    assert schema_options(settings).database == "t7"
    assert schema_options(load_settings()).database == "adpulse"


def test_a_server_follows_adpulse_topology() -> None:
    settings = load_settings(clickhouse_url=SERVER, topology="cluster")
    assert schema_topology(settings) == three_replicas()
    assert schema_topology(load_settings(clickhouse_url=SERVER)) == single()


def test_the_embedded_engine_is_one_node_whatever_adpulse_topology_says() -> None:
    assert schema_topology(load_settings(topology="cluster")) == single()


@pytest.mark.parametrize("url", [SERVER, "chdb://data"])
def test_a_commands_topology_wins(url: str) -> None:
    settings = load_settings(clickhouse_url=url, topology="single")
    assert schema_topology(settings, "cluster") == three_replicas()


def test_a_bad_spec_names_itself() -> None:
    settings = load_settings(clickhouse_url=SERVER, topology="nowhere.toml")
    with pytest.raises(ConfigError, match=r"topology 'nowhere\.toml': not 'single'"):
        schema_topology(settings)
