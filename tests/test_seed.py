"""Seeding inside ClickHouse: exact counts, unique ids, the model's shapes, consistent rollups."""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from adpulse.clickhouse.client import ClickHouseClient
from adpulse.clickhouse.connection import connect
from adpulse.clickhouse.migrate import Migrator
from adpulse.clickhouse.schema import SchemaOptions
from adpulse.errors import ConfigError
from adpulse.events import EVENT_COLUMNS
from adpulse.seed import SeedSummary, alias_table, allocate, plan_chunks, seed, seed_sql, to_ms
from adpulse.settings import get_settings
from adpulse.topology import single
from adpulse.traffic import DAY_MS, HOUR_MS, TrafficModel, campaigns, hour_slots, sample_events
from commands.seed import seed_command
from tests.support.oracle import ROLLUP_VS_RAW

MODEL = TrafficModel()
ROWS = 200_000


def _migrated(chdb_path: Path, database: str) -> ClickHouseClient:
    client = connect(f"chdb://{chdb_path}?database={database}")
    Migrator(client, single(), SchemaOptions(database=database)).migrate()
    return client


@pytest.fixture(scope="module")
def seeded(chdb_path: Path) -> Iterator[tuple[ClickHouseClient, SeedSummary]]:
    """One seed of ROWS events over the day before now, shared by the module's tests."""
    client = _migrated(chdb_path, "seed_test")
    summary = seed(client, MODEL, ROWS, 1, datetime.now(UTC), chunk_rows=50_000)
    yield client, summary
    client.command("DROP DATABASE IF EXISTS seed_test SYNC")
    client.close()


def _one(client: ClickHouseClient, sql: str) -> tuple[object, ...]:
    return client.query(sql.format(db=client.database))[0]


def test_row_count_is_exact_and_every_event_id_unique(
    seeded: tuple[ClickHouseClient, SeedSummary],
) -> None:
    client, summary = seeded
    assert summary.rows == ROWS
    assert _one(client, "SELECT count(), uniqExact(event_id) FROM {db}.events") == (ROWS, ROWS)


def test_events_fill_the_window_and_never_the_future(
    seeded: tuple[ClickHouseClient, SeedSummary],
) -> None:
    client, summary = seeded
    first, last = _one(client, "SELECT min(event_time), max(event_time) FROM {db}.events")
    assert summary.end - summary.start == timedelta(days=1)
    assert summary.start <= first < summary.start + timedelta(minutes=5)  # type: ignore[operator]
    assert summary.end - timedelta(minutes=5) < last < summary.end  # type: ignore[operator]
    assert summary.end <= datetime.now(UTC)


def test_rows_per_hour_follow_the_plan_exactly(
    seeded: tuple[ClickHouseClient, SeedSummary],
) -> None:
    client, summary = seeded
    start_ms, end_ms = to_ms(summary.start), to_ms(summary.end)
    slots = hour_slots(MODEL, start_ms, end_ms)
    counts = allocate(ROWS, [s.weight for s in slots])
    planned = {s.start_ms // HOUR_MS: n for s, n in zip(slots, counts, strict=True)}
    rows = client.query(
        f"SELECT intDiv(toUnixTimestamp64Milli(event_time), {HOUR_MS}), count() "
        f"FROM {client.database}.events GROUP BY 1"
    )
    assert dict(rows) == planned


def test_rates_and_prices_are_plausible(seeded: tuple[ClickHouseClient, SeedSummary]) -> None:
    client, _ = seeded
    ctr, cvr, cpm_usd = _one(
        client,
        "SELECT countIf(event_type = 'click') / countIf(event_type = 'impression'), "
        "countIf(event_type = 'conversion') / countIf(event_type = 'click'), "
        "sumIf(cost_micros, event_type = 'impression') / countIf(event_type = 'impression') "
        "* 1000 / 1e6 FROM {db}.events",
    )
    assert 0.005 <= ctr <= 0.03  # type: ignore[operator]
    assert 0.01 <= cvr <= 0.10  # type: ignore[operator]
    assert MODEL.cpm_usd[0] <= cpm_usd <= MODEL.cpm_usd[1]  # type: ignore[operator]
    assert _one(
        client,
        "SELECT countIf(event_type != 'impression' AND cost_micros > 0) + "
        "countIf(event_type != 'conversion' AND revenue_micros > 0) FROM {db}.events",
    ) == (0,)


def _expected_shares(model: TrafficModel) -> dict[str, float]:
    table = campaigns(model)
    impression = sum(w * i for w, i in zip(table.weight, table.impression_below, strict=True))
    click = sum(
        w * (c - i)
        for w, i, c in zip(table.weight, table.impression_below, table.click_below, strict=True)
    )
    return {"impression": impression, "click": click, "conversion": 1 - impression - click}


def _close(observed: int, share: float, n: int) -> bool:
    """Within 5 binomial standard deviations of n * share."""
    return abs(observed - n * share) <= 5 * math.sqrt(n * share * (1 - share)) + 1


def test_sql_and_python_samplers_draw_the_same_distributions(
    seeded: tuple[ClickHouseClient, SeedSummary],
) -> None:
    client, _ = seeded
    python = sample_events(MODEL, ROWS, 1_795_651_200_000, random.Random(11))
    db = client.database
    expected = {
        "event_type": _expected_shares(MODEL),
        "country": {c: w / sum(w for _, w in MODEL.countries) for c, w in MODEL.countries},
        "device_type": {d: w / sum(w for _, w in MODEL.devices) for d, w in MODEL.devices},
    }
    for column, shares in expected.items():
        sql: dict[str, int] = dict(
            client.query(f"SELECT toString({column}), count() FROM {db}.events GROUP BY 1")
        )
        py = Counter(getattr(e, column) for e in python)
        for value, share in shares.items():
            assert _close(sql.get(value, 0), share, ROWS), (column, value, "sql")
            assert _close(py[value], share, ROWS), (column, value, "python")
    weights = campaigns(MODEL).weight
    top = max(range(len(weights)), key=weights.__getitem__) + 1
    sql_top = _one(client, f"SELECT countIf(campaign_id = {top}) FROM {{db}}.events")[0]
    assert _close(sql_top, weights[top - 1], ROWS)  # type: ignore[arg-type]
    assert _close(sum(e.campaign_id == top for e in python), weights[top - 1], ROWS)


@pytest.mark.parametrize("rollup", sorted(ROLLUP_VS_RAW))
def test_each_rollup_equals_the_raw_aggregate(
    seeded: tuple[ClickHouseClient, SeedSummary], rollup: str
) -> None:
    client, _ = seeded
    from_rollup, from_raw = (q.format(db=client.database) for q in ROLLUP_VS_RAW[rollup])
    expected = client.query(from_raw)
    assert expected
    assert client.query(from_rollup) == expected


def test_same_seed_and_end_give_the_same_rows(chdb_path: Path) -> None:
    end = datetime.now(UTC) - timedelta(hours=1)
    columns = ", ".join(EVENT_COLUMNS)  # not ingested_at, which is the insert time
    digests = []
    for database in ("seed_again_a", "seed_again_b"):
        client = _migrated(chdb_path, database)
        try:
            seed(client, MODEL, 3_000, 1, end, seed=9)
            digests.append(
                _one(client, f"SELECT groupBitXor(cityHash64({columns})) FROM {{db}}.events")
            )
        finally:
            client.command(f"DROP DATABASE IF EXISTS {database} SYNC")
            client.close()
    assert digests[0] == digests[1]


def test_seed_refuses_a_future_end_and_a_naive_time() -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(ConfigError, match="in the future"):
        seed(None, MODEL, 10, 1, later)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no timezone"):
        seed(None, MODEL, 10, 1, datetime(2026, 1, 1))  # type: ignore[arg-type]


def test_allocate_splits_exactly_and_proportionally() -> None:
    counts = allocate(1_000_003, [1.0, 2.0, 3.5, 0.25])
    assert sum(counts) == 1_000_003
    assert counts[2] == pytest.approx(1_000_003 * 3.5 / 6.75, abs=1)


def test_chunks_stay_inside_one_hour_and_cover_every_row() -> None:
    start = 1_795_651_200_000 + 7 * 60_000
    chunks = plan_chunks(MODEL, 1_000_000, start, start + 2 * DAY_MS, chunk_rows=30_000)
    assert sum(c.rows for c in chunks) == 1_000_000
    assert max(c.rows for c in chunks) <= 30_000
    assert [c.offset for c in chunks] == [0, *(c.offset + c.rows for c in chunks[:-1])]
    assert all(c.start_ms // HOUR_MS == (c.start_ms + c.span_ms - 1) // HOUR_MS for c in chunks)
    assert (
        chunks[0].start_ms == start
        and chunks[-1].start_ms + chunks[-1].span_ms == start + 2 * DAY_MS
    )


@pytest.mark.parametrize("sliver_ms", [1, 10_000, 59 * 60_000])
def test_an_hour_with_no_rows_gets_no_chunk(sliver_ms: int) -> None:
    # `adpulse seed` ends at now, so its first hour is a sliver whose length depends on the
    # minute it runs; with few events that sliver's share rounds to 0 rows. That once divided
    # by zero (a CLI run failed at some minutes of the hour and passed at others).
    start = 1_795_651_200_000 + HOUR_MS - sliver_ms
    chunks = plan_chunks(MODEL, 20, start, start + 2 * DAY_MS, chunk_rows=30_000)
    assert sum(c.rows for c in chunks) == 20
    assert all(c.rows > 0 for c in chunks)
    few = plan_chunks(MODEL, 1, start, start + 3 * HOUR_MS, chunk_rows=30_000)
    assert [c.rows for c in few] == [1]


def test_alias_table_reproduces_the_weights() -> None:
    weights = [5.0, 1.0, 0.5, 3.0, 0.01]
    keep, alias = alias_table(weights)
    n = len(weights)
    mass = [0.0] * n
    for slot in range(n):
        mass[slot] += keep[slot] / n
        mass[alias[slot]] += (1 - keep[slot]) / n
    assert mass == pytest.approx([w / sum(weights) for w in weights], rel=1e-6)


def test_statement_carries_numbers_only() -> None:
    sql = seed_sql(MODEL, "adpulse")
    assert set(re.findall(r"'[^']*'", sql)) <= {"'UTC'", "'u'", "''"}
    assert len(sql) < 256 * 1024  # fits a server's default max_query_size as well


def test_cli_seeds_and_prints_json(chdb_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADPULSE_CLICKHOUSE_URL", f"chdb://{chdb_path}?database=seed_cli")
    app = typer.Typer()
    app.command()(seed_command)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["--events", "2000", "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert '"rows": 2000' in result.stdout
    client = connect(f"chdb://{chdb_path}?database=seed_cli")
    try:
        assert _one(client, "SELECT count() FROM {db}.events") == (2000,)
    finally:
        client.command("DROP DATABASE IF EXISTS seed_cli SYNC")
        client.close()


def test_cli_prints_one_line_on_a_bad_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADPULSE_CLICKHOUSE_URL", "chdb://")
    app = typer.Typer()
    app.command()(seed_command)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["--events", "10"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: ADPULSE_CLICKHOUSE_URL: chdb:// needs a data path, e.g. chdb://.adpulse/chdb"
    ]
