"""Bytes per event measured on the project's own schema: ClickHouse parts after merges, and Kafka
messages as the generator encodes them. `cost/usage.py` prices usage from the committed result.

    python -m cost.measure --events 1000000 --out cost/measured.json

A day of events from the project's traffic model (`adpulse.traffic`) is encoded with the real
encoder (`adpulse.events.encode`, as `adpulse generate` sends it) and inserted into a migrated chDB
database in blocks, as the consumer inserts them (`to_columns`, the consumer's insert settings), so
the materialized views fill the rollups. `OPTIMIZE ... FINAL` then merges every table as steady
state would, and the active parts of `system.parts` give the bytes.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adpulse import names
from adpulse.clickhouse.client import ClickHouseClient
from adpulse.clickhouse.connection import connect
from adpulse.clickhouse.identifiers import validate_identifier
from adpulse.clickhouse.migrate import Migrator
from adpulse.clickhouse.schema import SchemaOptions
from adpulse.clickhouse.url import EmbeddedTarget
from adpulse.errors import AdpulseError, ConfigError
from adpulse.events import encode, to_columns
from adpulse.settings import Settings
from adpulse.topology import single
from adpulse.traffic import DAY_MS, TrafficModel, sample_events
from consumers.consumer import INSERT_SETTINGS
from cost.usage import SEED_EVENTS_PER_DAY

MEASURE_DATABASE = "cost_measure"
_TTL_DAYS = re.compile(r"\bTTL\b[^\n]*?toIntervalDay\((\d+)\)")
BLOCK_ROWS = 100_000  # rows per insert; after OPTIMIZE FINAL the parts do not depend on it
# Record batch v2 header: baseOffset 8, batchLength 4, partitionLeaderEpoch 4, magic 1, crc 4,
# attributes 2, lastOffsetDelta 4, first/maxTimestamp 8+8, producerId 8, epoch 2, baseSequence 4,
# record count 4.
RECORD_BATCH_HEADER_BYTES = 61
PRODUCER_LINGER_MS = 20  # linger.ms of the producer in adpulse/generate.py
ASSUMPTIONS = [
    "Compression improves with scale: a day of 200M events (larger parts, denser sort keys) "
    "compresses at least as well as this sample, so raw_bytes_per_event is an upper bound there.",
    "Rollup rows are bounded by key cardinality (campaign x hour x type, ...), so rollup bytes "
    "grow more slowly than events: rollup_bytes_per_event is an upper bound at larger volumes.",
    "bytes_on_disk of active parts after OPTIMIZE FINAL: compressed columns, marks, primary index, "
    "checksums and projections (the rollups' by_campaign and totals projections); "
    "data_compressed_bytes counts the table's own columns only.",
    "Per-table TTLs differ (events, breakdown_hourly, publisher_hourly: retention_days; "
    "campaign_hourly/daily: rollup_retention_days; events_per_minute: live_retention_days; "
    "`ttl_days` shows the defaults): price rollup storage per table from `tables`, not "
    "rollup_bytes_per_event x one retention.",
    "Not counted: ingest_state (one row per topic partition) and the schema ledger; replicas "
    "multiply every figure.",
    "Kafka: kafka_record_bytes = encoded JSON value + key (event_id) + record v2 framing "
    "(varints, no headers, offset and timestamp deltas under 64); kafka_bytes_per_message adds "
    "the 61-byte batch header over kafka_records_per_batch, the average rate of 200M events a day "
    "over the topic's default partitions within the generator's linger.ms (20). At another rate "
    "add 61 / records per batch to kafka_record_bytes_mean instead.",
    "Kafka: the generator's producer compresses batches with lz4, which is not applied here, so "
    "the Kafka figures are an upper bound on what the log holds; replication factor, log "
    "indexes and retention are not included.",
]


@dataclass(frozen=True)
class TableBytes:
    """Active parts of one table: rows and bytes, summed from system.parts."""

    rows: int
    parts: int
    bytes_on_disk: int
    data_compressed_bytes: int
    data_uncompressed_bytes: int
    ttl_days: int | None  # from the table's TTL as ClickHouse holds it; None without one


@dataclass(frozen=True)
class Measurement:
    """What one day of `events` costs in bytes, with where and when it was measured."""

    events: int
    seed: int
    day: str
    measured_at: str
    git_commit: str | None
    git_dirty: bool | None
    chdb_version: str
    clickhouse_version: str
    tables: dict[str, TableBytes]
    raw_table: str
    rollup_tables: list[str]
    raw_bytes_per_event: float
    rollup_bytes_per_event: float
    kafka_value_bytes_mean: float
    kafka_value_bytes_p95: int
    kafka_key_bytes_mean: float
    kafka_record_bytes_mean: float
    kafka_record_bytes_p95: int
    kafka_records_per_batch: float
    kafka_bytes_per_message: float
    kafka_bytes_per_message_p95: float
    assumptions: list[str]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Measurement:
        """Parse `to_json` output; a missing or unknown field raises ConfigError."""
        data: dict[str, Any] = json.loads(text)
        wanted = {f.name for f in fields(cls)}
        if set(data) != wanted:
            raise ConfigError(
                f"measurement fields differ: missing {sorted(wanted - set(data))}, unknown "
                f"{sorted(set(data) - wanted)}; run `python -m cost.measure` again"
            )
        data["tables"] = {name: TableBytes(**t) for name, t in data["tables"].items()}
        return cls(**data)


def varint_bytes(value: int) -> int:
    """Length of Kafka's zigzag varint for `value`."""
    encoded = (value << 1) ^ (value >> 63)
    return max(1, math.ceil(encoded.bit_length() / 7))


def record_bytes(key: int, value: int, offset_delta: int = 0, timestamp_delta: int = 0) -> int:
    """Bytes of one Kafka record (v2, no headers) with a key and value of these lengths."""
    body = 1 + varint_bytes(timestamp_delta) + varint_bytes(offset_delta)  # attributes, deltas
    body += varint_bytes(key) + key + varint_bytes(value) + value + varint_bytes(0)  # 0 headers
    return varint_bytes(body) + body


def records_per_batch(events_per_day: float, partitions: int, linger_ms: float) -> float:
    """Records a partition's batch gathers at the average rate within linger.ms (at least 1)."""
    return max(1.0, events_per_day / 86_400 * linger_ms / 1000 / partitions)


def nearest_rank(values: list[int], share: float) -> int:
    """The `share` percentile of `values` by nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def measure(
    events: int,
    path: str,
    seed: int = 42,
    *,
    block_rows: int = BLOCK_ROWS,
    database: str = MEASURE_DATABASE,
) -> Measurement:
    """Insert a day of `events` into database `database` at chDB `path`, merge, measure.

    The day is yesterday (UTC), inside every table's TTL. The database is replaced first and left
    for inspection. chDB opens one data path per process: pass the path this process already
    uses, if any.
    """
    if events < 1 or block_rows < 1:
        raise ConfigError(f"events={events} and block_rows={block_rows} must be >= 1")
    day_ms = (int(time.time() * 1000) // DAY_MS - 1) * DAY_MS
    sample = sample_events(TrafficModel(), events, day_ms, random.Random(seed))
    sample.sort(key=lambda e: e.event_time_ms)  # the order a consumer receives them in
    client = _fresh_database(path, database)
    try:
        Migrator(client, single(), SchemaOptions(database=database)).migrate()
        values: list[int] = []
        keys: list[int] = []
        for offset in range(0, events, block_rows):
            block = sample[offset : offset + block_rows]
            values += [len(encode(e)) for e in block]
            keys += [len(e.event_id.encode()) for e in block]
            token = f"cost-measure:{seed}:{offset}"
            settings = {**INSERT_SETTINGS, "insert_deduplication_token": token}
            client.insert(names.EVENTS_TABLE, to_columns(block), settings=settings)
        rollups = rollup_tables(client)
        for table in (names.EVENTS_TABLE, *rollups):
            client.command(f"OPTIMIZE TABLE {database}.{validate_identifier(table)} FINAL")
        tables = table_bytes(client, [names.EVENTS_TABLE, *rollups])
        [(version,)] = client.query("SELECT version()")
    finally:
        client.close()
    records = [record_bytes(k, v) for k, v in zip(keys, values, strict=True)]
    partitions = int(Settings.model_fields["topic_partitions"].default)
    per_batch = records_per_batch(SEED_EVENTS_PER_DAY, partitions, PRODUCER_LINGER_MS)
    header = RECORD_BATCH_HEADER_BYTES / per_batch
    record_mean = sum(records) / events
    record_p95 = nearest_rank(records, 0.95)
    commit, dirty = _git_state()
    return Measurement(
        events=events,
        seed=seed,
        day=datetime.fromtimestamp(day_ms / 1000, UTC).date().isoformat(),
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        git_commit=commit,
        git_dirty=dirty,
        chdb_version=_chdb_version(),
        clickhouse_version=str(version),
        tables=tables,
        raw_table=names.EVENTS_TABLE,
        rollup_tables=rollups,
        raw_bytes_per_event=round(tables[names.EVENTS_TABLE].bytes_on_disk / events, 3),
        rollup_bytes_per_event=round(sum(tables[t].bytes_on_disk for t in rollups) / events, 3),
        kafka_value_bytes_mean=round(sum(values) / events, 3),
        kafka_value_bytes_p95=nearest_rank(values, 0.95),
        kafka_key_bytes_mean=round(sum(keys) / events, 3),
        kafka_record_bytes_mean=round(record_mean, 3),
        kafka_record_bytes_p95=record_p95,
        kafka_records_per_batch=round(per_batch, 3),
        kafka_bytes_per_message=round(record_mean + header, 3),
        kafka_bytes_per_message_p95=round(record_p95 + header, 3),
        assumptions=ASSUMPTIONS,
    )


def rollup_tables(client: ClickHouseClient) -> list[str]:
    """Tables that materialized views fill from the raw events table, by name."""
    rows = client.query(
        "SELECT DISTINCT target_table FROM system.tables WHERE database = {db:String} "
        "AND engine = 'MaterializedView' AND name IN (SELECT arrayJoin(dependencies_table) "
        "FROM system.tables WHERE database = {db:String} AND name = {raw:String}) "
        "ORDER BY target_table",
        {"db": client.database, "raw": names.EVENTS_TABLE},
    )
    return [str(name) for (name,) in rows]


def table_bytes(client: ClickHouseClient, tables: list[str]) -> dict[str, TableBytes]:
    """Active parts of `tables` in the client's database, summed per table."""
    rows = client.query(
        "SELECT table, sum(rows), count(), sum(bytes_on_disk), sum(data_compressed_bytes), "
        "sum(data_uncompressed_bytes) FROM system.parts WHERE database = {db:String} "
        "AND active AND has({tables:Array(String)}, table) GROUP BY table",
        {"db": client.database, "tables": tables},
    )
    ddl: dict[str, str] = dict(
        client.query(
            "SELECT name, create_table_query FROM system.tables WHERE database = {db:String}",
            {"db": client.database},
        )
    )
    found: dict[str, TableBytes] = {}
    for table, rows_, parts, on_disk, compressed, uncompressed in rows:
        ttl = _TTL_DAYS.search(ddl[table])
        found[str(table)] = TableBytes(
            int(rows_),
            int(parts),
            int(on_disk),
            int(compressed),
            int(uncompressed),
            int(ttl[1]) if ttl else None,
        )
    empty = sorted(set(tables) - set(found))
    if empty:
        raise AdpulseError(f"tables {empty} have no active parts after the insert: check the DDL")
    return {name: found[name] for name in tables}


def _fresh_database(path: str, database: str) -> ClickHouseClient:
    validate_identifier(database, what="database")
    try:
        client = connect(EmbeddedTarget(path=path, database=database))
    except RuntimeError as exc:  # chDB refuses a second data path in one process
        raise AdpulseError(f"cannot open chDB at {path}: {exc}; run in a fresh process") from None
    client.command(f"DROP DATABASE IF EXISTS {database} SYNC")
    client.command(f"CREATE DATABASE {database}")
    return client


def _chdb_version() -> str:
    from importlib.metadata import version

    return version("chdb")


def _git_state() -> tuple[str | None, bool | None]:
    """(HEAD commit, whether the work tree has changes), or Nones outside a git checkout."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True)
        status = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True)
    except OSError:
        return None, None
    if head.returncode or status.returncode:
        return None, None
    return head.stdout.decode().strip(), bool(status.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cost.measure", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the day")
    parser.add_argument("--seed", type=int, default=42, help="seed of the traffic sample")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("measured.json"))
    parser.add_argument("--path", help="chDB data path (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        if args.path:
            result = measure(args.events, args.path, args.seed)
        else:
            with tempfile.TemporaryDirectory(prefix="adpulse-measure-") as scratch:
                result = measure(args.events, str(Path(scratch) / "data"), args.seed)
    except AdpulseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.out.write_text(result.to_json())
    print(
        f"{result.events} events in {time.monotonic() - started:.0f} s: raw "
        f"{result.raw_bytes_per_event} B/event, rollups {result.rollup_bytes_per_event} B/event, "
        f"Kafka {result.kafka_bytes_per_message} B/message -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
