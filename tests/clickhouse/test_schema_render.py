"""Rendered schema files: snapshots, ClickHouse's own parser on cluster DDL, chDB on single."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from adpulse import names
from adpulse.clickhouse.client import ClickHouseClient
from adpulse.clickhouse.config import render_schema
from adpulse.clickhouse.schema import SchemaOptions, migration_files, split_statements
from adpulse.topology import Topology, single, three_replicas
from commands.schema import schema_render
from tests.clickhouse.conftest import SnapshotCheck

TOPOLOGIES = {"single": single(), "cluster": three_replicas()}
OPTIONS = SchemaOptions(database=names.DATABASE)
EXPECTED_FILES = [f"{m.version:04d}_{m.name}.sql" for m in migration_files()]
SIX = Topology(
    cluster="adpulse",
    shards=(("a1", "a2", "a3"), ("b1", "b2", "b3")),
    keeper=("a1", "b2", "a3"),
)


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_rendered_schema_matches_snapshots(name: str, snapshot: SnapshotCheck) -> None:
    snapshot(render_schema(TOPOLOGIES[name], OPTIONS), f"{name}/schema")


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_one_file_per_migration_of_terminated_statements(name: str) -> None:
    files = render_schema(TOPOLOGIES[name], OPTIONS)
    assert list(files) == EXPECTED_FILES
    for text in files.values():
        assert text.endswith(";\n") and not text.endswith(";;\n")
        statements = split_statements(text)
        assert statements and not any(s.endswith(";") for s in statements)


def test_cluster_ddl_is_replicated_and_on_cluster() -> None:
    for text in render_schema(three_replicas(), OPTIONS).values():
        for statement in split_statements(text):
            assert " ON CLUSTER adpulse" in statement
            engine = re.search(r"ENGINE = (\w*MergeTree)", statement)
            if engine:
                assert engine.group(1).startswith("Replicated"), statement[:80]


@pytest.mark.parametrize("topology", [three_replicas(), SIX], ids=["3", "6"])
def test_every_cluster_statement_parses_with_clickhouse(
    topology: Topology, chdb_client: ClickHouseClient
) -> None:
    for filename, text in render_schema(topology, OPTIONS).items():
        for statement in split_statements(text):
            [(formatted,)] = chdb_client.query("SELECT formatQuery({q:String})", {"q": statement})
            # The parser's own rendering keeps the verb and the ON CLUSTER clause.
            assert formatted.split()[0] in ("CREATE", "ALTER"), f"{filename}: {statement[:80]}"
            assert f"ON CLUSTER {topology.cluster}" in formatted, f"{filename}: {statement[:80]}"


def test_single_node_ddl_executes_in_chdb(chdb_db: ClickHouseClient) -> None:
    options = SchemaOptions(database=chdb_db.database)
    for text in render_schema(single(), options).values():
        for statement in split_statements(text):
            chdb_db.command(statement)
    tables = {
        row[0]
        for row in chdb_db.query(
            "SELECT name FROM system.tables WHERE database = {db:String}",
            {"db": chdb_db.database},
        )
    }
    assert {
        names.EVENTS_TABLE,
        names.EVENTS_MINUTE_TABLE,
        names.EVENTS_HOURLY_TABLE,
        names.CAMPAIGN_DAILY_TABLE,
        names.EVENTS_MINUTE_VIEW,
        names.EVENTS_HOURLY_VIEW,
        names.CAMPAIGN_DAILY_VIEW,
        names.BREAKDOWN_HOURLY_TABLE,
        names.PUBLISHER_HOURLY_TABLE,
        names.BREAKDOWN_HOURLY_VIEW,
        names.PUBLISHER_HOURLY_VIEW,
    } <= tables


def cli() -> typer.Typer:
    """`adpulse schema render` as `cli.py` registers it."""
    app = typer.Typer()
    schema_app = typer.Typer()
    schema_app.command("render")(schema_render)
    app.add_typer(schema_app, name="schema")
    return app


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No `.env` or ADPULSE_* variable of the developer's shell changes the rendered DDL."""
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("ADPULSE_")]:
        monkeypatch.delenv(key)
    return tmp_path


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_cli_schema_render_writes_what_render_schema_returns(isolated: Path, name: str) -> None:
    out = isolated / "schema"
    result = CliRunner().invoke(cli(), ["schema", "render", "--topology", name, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"wrote {out / f}" for f in EXPECTED_FILES]
    expected = render_schema(TOPOLOGIES[name], OPTIONS)
    assert {f: (out / f).read_text() for f in EXPECTED_FILES} == expected


def test_cli_schema_render_takes_retention_from_settings(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADPULSE_RETENTION_DAYS", "33")
    result = CliRunner().invoke(cli(), ["schema", "render", "--out", str(isolated), "--json"])
    assert result.exit_code == 0, result.output
    paths = json.loads(result.stdout)
    assert [Path(p).name for p in paths] == EXPECTED_FILES
    assert "TTL toDate(event_time) + INTERVAL 33 DAY" in Path(paths[0]).read_text()


def test_cli_schema_render_follows_adpulse_topology_like_migrate(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADPULSE_CLICKHOUSE_URL", "clickhouse://ch-1:9000/adpulse")
    monkeypatch.setenv("ADPULSE_TOPOLOGY", "cluster")
    out = isolated / "schema"
    result = CliRunner().invoke(cli(), ["schema", "render", "--out", str(out)])
    assert result.exit_code == 0, result.output
    expected = render_schema(three_replicas(), OPTIONS)
    assert {f: (out / f).read_text() for f in EXPECTED_FILES} == expected

    # --topology still overrides the setting.
    result = CliRunner().invoke(
        cli(), ["schema", "render", "--topology", "single", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert {f: (out / f).read_text() for f in EXPECTED_FILES} == render_schema(single(), OPTIONS)


def test_cli_schema_render_bad_topology_is_one_line_and_exit_1(isolated: Path) -> None:
    bad = isolated / "bad.toml"
    bad.write_text("shards = [[\n")
    result = CliRunner().invoke(cli(), ["schema", "render", "--topology", str(bad)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: topology file {bad}: ")
    assert len(result.stderr.splitlines()) == 1
    assert not (isolated / "out").exists()
