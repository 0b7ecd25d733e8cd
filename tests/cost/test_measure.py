"""cost.measure: figures that agree with system.parts read here, hand-computed Kafka framing, and a
committed cost/measured.json that agrees with a small sample."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import fields
from datetime import date, datetime
from pathlib import Path

import pytest

from adpulse import names
from adpulse.clickhouse.client import ClickHouseClient
from adpulse.clickhouse.connection import connect
from adpulse.clickhouse.url import EmbeddedTarget
from adpulse.errors import ConfigError
from cost.measure import (
    RECORD_BATCH_HEADER_BYTES,
    Measurement,
    measure,
    nearest_rank,
    record_bytes,
    records_per_batch,
    varint_bytes,
)

SAMPLE = 20_000
BLOCK_ROWS = 5_000  # four inserts, so four parts per table until OPTIMIZE FINAL merges them
DATABASE = "cost_measure_test"
COMMITTED = Path(__file__).resolve().parents[2] / "cost" / "measured.json"
RERUN = "re-measure with `python -m cost.measure --events 1000000 --out cost/measured.json`"
ROLLUPS = {
    names.EVENTS_MINUTE_TABLE,
    names.EVENTS_HOURLY_TABLE,
    names.CAMPAIGN_DAILY_TABLE,
    names.BREAKDOWN_HOURLY_TABLE,
    names.PUBLISHER_HOURLY_TABLE,
}
# Framing of a record whose value is 128..8191 bytes and key under 64: length 2, attributes 1,
# timestamp and offset deltas 1 + 1, key length 1, value length 2, header count 1.
FRAMING = 9


@pytest.fixture(scope="module")
def sample(chdb_path: Path) -> Iterator[tuple[Measurement, ClickHouseClient]]:
    """One measurement on the suite's chDB path (one path per process), and a client of its own."""
    result = measure(SAMPLE, str(chdb_path), seed=7, block_rows=BLOCK_ROWS, database=DATABASE)
    client = connect(EmbeddedTarget(path=str(chdb_path), database=DATABASE))
    yield result, client
    client.command(f"DROP DATABASE IF EXISTS {DATABASE} SYNC")
    client.close()


def _parts(client: ClickHouseClient) -> dict[str, tuple[int, int, int, int]]:
    rows = client.query(
        "SELECT table, sum(rows), count(), sum(bytes_on_disk), sum(data_compressed_bytes) "
        "FROM system.parts WHERE database = {db:String} AND active GROUP BY table",
        {"db": DATABASE},
    )
    return {r[0]: (int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}


def test_every_event_lands_in_the_raw_table(
    sample: tuple[Measurement, ClickHouseClient],
) -> None:
    result, client = sample
    assert result.events == SAMPLE
    assert result.tables[names.EVENTS_TABLE].rows == SAMPLE
    [(count,)] = client.query(f"SELECT count() FROM {DATABASE}.{names.EVENTS_TABLE}")
    assert count == SAMPLE


def test_rollups_are_the_project_rollups(sample: tuple[Measurement, ClickHouseClient]) -> None:
    result, _ = sample
    assert set(result.rollup_tables) == ROLLUPS, (
        "the views' targets differ from the rollups listed here: update ROLLUPS and " + RERUN
    )
    assert set(result.tables) == ROLLUPS | {names.EVENTS_TABLE}


def test_per_table_figures_match_system_parts(
    sample: tuple[Measurement, ClickHouseClient],
) -> None:
    result, client = sample
    parts = _parts(client)
    for table, measured in result.tables.items():
        rows, count, on_disk, compressed = parts[table]
        assert (measured.rows, measured.parts) == (rows, count), table
        assert (measured.bytes_on_disk, measured.data_compressed_bytes) == (on_disk, compressed)
        assert measured.rows > 0 and measured.bytes_on_disk > 0, table


def test_parts_are_merged_as_in_steady_state(
    sample: tuple[Measurement, ClickHouseClient],
) -> None:
    _, client = sample
    counts = client.query(
        "SELECT table, partition, count() FROM system.parts WHERE database = {db:String} "
        "AND active AND table != {ledger:String} GROUP BY table, partition",
        {"db": DATABASE, "ledger": names.MIGRATIONS_TABLE},
    )
    assert {t for t, _, _ in counts} == ROLLUPS | {names.EVENTS_TABLE}
    assert [(t, p, n) for t, p, n in counts if n != 1] == []


def test_bytes_per_event_are_the_parts_over_the_events(
    sample: tuple[Measurement, ClickHouseClient],
) -> None:
    result, client = sample
    parts = _parts(client)
    raw = parts[names.EVENTS_TABLE][2] / SAMPLE
    rollups = sum(parts[t][2] for t in ROLLUPS) / SAMPLE
    assert result.raw_bytes_per_event == pytest.approx(raw, abs=0.001)
    assert result.rollup_bytes_per_event == pytest.approx(rollups, abs=0.001)
    assert 0 < result.raw_bytes_per_event < result.kafka_value_bytes_mean
    events = result.tables[names.EVENTS_TABLE]
    assert result.raw_bytes_per_event < events.data_uncompressed_bytes / events.rows
    assert result.rollup_bytes_per_event > 0


def test_kafka_figures_are_value_key_and_framing(
    sample: tuple[Measurement, ClickHouseClient],
) -> None:
    result, _ = sample
    assert result.kafka_key_bytes_mean == 36  # event_id as UUID text
    assert 200 < result.kafka_value_bytes_mean <= result.kafka_value_bytes_p95 < 400
    expected = result.kafka_value_bytes_mean + result.kafka_key_bytes_mean + FRAMING
    assert result.kafka_record_bytes_mean == pytest.approx(expected, abs=0.002)
    assert result.kafka_record_bytes_p95 == result.kafka_value_bytes_p95 + 36 + FRAMING
    header = RECORD_BATCH_HEADER_BYTES / result.kafka_records_per_batch
    assert result.kafka_bytes_per_message == pytest.approx(
        result.kafka_record_bytes_mean + header, abs=0.002
    )


def test_record_bytes_by_hand() -> None:
    # 36-byte key, 262-byte value: attributes 1 + deltas 1 + 1 + key length 1 + 36 + value
    # length 2 (zigzag 524) + 262 + header count 1 = 305; its length, zigzag 610, takes 2.
    assert record_bytes(36, 262) == 307
    assert record_bytes(36, 63) == 36 + 63 + 8  # value length fits one byte
    assert record_bytes(36, 64) == 36 + 64 + 9
    assert [varint_bytes(v) for v in (0, 63, 64, 8191, 8192, -1, -64, -65)] == [
        1, 1, 2, 2, 3, 1, 1, 2,
    ]  # fmt: skip
    # 200M a day is 2314.8/s; over 20 ms and 6 partitions that is 7.716 records a batch.
    assert records_per_batch(200e6, 6, 20) == pytest.approx(7.716, abs=0.001)
    assert records_per_batch(1000, 6, 20) == 1.0
    assert nearest_rank(list(range(1, 21)), 0.95) == 19
    assert nearest_rank([5], 0.95) == 5


def test_from_json_round_trips_and_refuses_missing_fields(
    sample: tuple[Measurement, ClickHouseClient],
) -> None:
    result, _ = sample
    assert Measurement.from_json(result.to_json()) == result
    data = json.loads(result.to_json())
    del data["raw_bytes_per_event"]
    with pytest.raises(ConfigError, match="raw_bytes_per_event"):
        Measurement.from_json(json.dumps(data))


def test_committed_measurement_is_complete_and_agrees_with_the_sample(
    sample: tuple[Measurement, ClickHouseClient],
) -> None:
    result, _ = sample
    assert COMMITTED.is_file(), f"{COMMITTED} is missing: {RERUN}"
    data = json.loads(COMMITTED.read_text())
    assert set(data) == {f.name for f in fields(Measurement)}, RERUN
    committed = Measurement.from_json(COMMITTED.read_text())
    datetime.fromisoformat(committed.measured_at)
    date.fromisoformat(committed.day)
    assert committed.chdb_version and committed.clickhouse_version
    assert committed.events >= 500_000
    assert committed.tables[names.EVENTS_TABLE].rows == committed.events
    assert set(committed.rollup_tables) == set(result.rollup_tables), RERUN
    # Small samples compress worse: the committed day may be smaller per event, not larger.
    assert result.raw_bytes_per_event / 4 < committed.raw_bytes_per_event
    assert committed.raw_bytes_per_event <= result.raw_bytes_per_event * 1.5, RERUN
    assert 0 < committed.rollup_bytes_per_event <= result.rollup_bytes_per_event * 1.5, RERUN
    # The encoding does not depend on the volume.
    assert committed.kafka_value_bytes_mean == pytest.approx(result.kafka_value_bytes_mean, 0.05)
