"""The baselines `bench ingest` and `bench api` measure beside their figures: against a real
broker and real chDB where they touch one, the arithmetic by hand where they do not."""

from __future__ import annotations

import orjson
import pytest

from adpulse.clickhouse.client import ClickHouseClient
from adpulse.clickhouse.migrate import Migrator
from adpulse.clickhouse.schema import SchemaOptions
from adpulse.events import encode, to_columns
from adpulse.topology import single
from bench.api_baseline import cpu_per_request, fixed_body
from bench.ingest_baselines import PLAIN_TABLE, _plain_ddl, bare_consumer, bare_insert, cpu_split
from consumers.phases import CpuPhases
from tests.support.events import random_events
from tests.support.kafka import isolated_settings, produce

NOW_MS = 1_795_780_800_000


def test_the_bare_consumer_drains_every_message_of_the_topic(kafka_bootstrap: str) -> None:
    settings = isolated_settings(kafka_bootstrap, "chdb://unused", topic_partitions=1)
    events = random_events(500, NOW_MS, 60_000, seed=8)
    produce(settings, [(e.event_id.encode(), encode(e)) for e in events])
    drained = bare_consumer(settings, 500)
    assert drained["events"] == 500
    assert drained["events_per_second"] > 0 and drained["cpu_s_per_million"] > 0


def test_the_plain_table_has_the_events_columns_and_keys_but_no_projections(
    chdb_db: ClickHouseClient,
) -> None:
    Migrator(chdb_db, single(), SchemaOptions(database=chdb_db.database)).migrate()
    chdb_db.command(_plain_ddl(chdb_db))
    columns = (
        "SELECT name, type, default_expression, compression_codec FROM system.columns "
        "WHERE database = {db:String} AND table = {t:String} ORDER BY position"
    )
    keys = (
        "SELECT partition_key, sorting_key, engine FROM system.tables "
        "WHERE database = {db:String} AND name = {t:String}"
    )
    db = chdb_db.database
    assert chdb_db.query(columns, {"db": db, "t": PLAIN_TABLE}) == chdb_db.query(
        columns, {"db": db, "t": "events"}
    )
    [plain_keys], [event_keys] = (
        chdb_db.query(keys, {"db": db, "t": t}) for t in (PLAIN_TABLE, "events")
    )
    assert plain_keys[:2] == event_keys[:2] and plain_keys[2] == "MergeTree"
    projections = chdb_db.query(
        "SELECT count() FROM system.projections "
        "WHERE database = {db:String} AND table = {t:String}",
        {"db": db, "t": PLAIN_TABLE},
    )
    assert projections == [(0,)]


def test_the_bare_insert_writes_the_same_rows_a_batch_at_a_time_and_leaves_nothing(
    chdb_db: ClickHouseClient,
) -> None:
    Migrator(chdb_db, single(), SchemaOptions(database=chdb_db.database)).migrate()
    chdb_db.insert("events", to_columns(random_events(1000, NOW_MS - 3_600_000, 3_600_000)))
    inserted = bare_insert(chdb_db, 300)
    assert inserted["rows"] == 1000 and inserted["inserts"] == 4
    tables = chdb_db.query(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        {"db": chdb_db.database, "t": PLAIN_TABLE},
    )
    assert tables == [(0,)]


def test_the_cpu_split_is_per_event_and_its_shares_add_up() -> None:
    cpu = CpuPhases()
    cpu.seconds.update(fetch=1.0, decode=2.0, batch=0.5, columns=0.25, insert=4.0, other=0.25)
    split = cpu_split(cpu, 1_000_000)
    assert split["us_per_event"] == {
        "fetch": 1.0, "decode": 2.0, "batch": 0.5, "columns": 0.25, "insert": 4.0, "other": 0.25,
    }  # fmt: skip
    assert (split["share"]["insert"], split["share"]["fetch"]) == (0.5, 0.125)
    assert sum(split["share"].values()) == pytest.approx(1.0, abs=0.005)  # each rounded to 0.001


def test_the_fixed_body_is_json_of_the_asked_size() -> None:
    for size in (12, 492, 5000):
        body = fixed_body(size)
        assert len(body) == size and isinstance(orjson.loads(body), dict)


def test_cpu_per_miss_leaves_out_the_hits_of_its_phase() -> None:
    """Hits: 300 ms over 1,000 requests = 0.3 ms each. Misses phase: 90 ms over 60 misses and
    100 hits; the hits' 30 ms taken out leaves 60 ms, 1 ms a miss, 3.33x a hit."""
    phases = [
        {"phase": "misses", "concurrency": 32, "requests": 160, "server_cpu_ms": 90.0,
         "miss_ms": {"count": 60}, "hit_ms": {"count": 100}},
        {"phase": "hits", "concurrency": 32, "requests": 1000, "server_cpu_ms": 300.0,
         "miss_ms": {"count": 0}, "hit_ms": {"count": 1000}},
    ]  # fmt: skip
    cpu_per_request(phases)
    assert phases[1]["cpu_ms_per_hit"] == 0.3
    assert phases[0]["cpu_ms_per_miss"] == 1.0 and phases[0]["miss_vs_hit_cpu"] == 3.33
