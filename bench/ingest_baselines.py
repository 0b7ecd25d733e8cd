"""The baselines `bench ingest` measures beside the consumer, in the same run on the same machine.

- A bare confluent-kafka consumer, with the ingest consumer's fetch settings, drains the same
  prefilled topic and discards every message: the fastest this machine and broker hand
  messages to Python. The consumer's rate is reported as a fraction of it.
- A bare columnar insert of the same rows (read back from `events`), a consumer batch at a
  time, into a plain MergeTree with the same columns and keys but no views or projections: the
  floor of the consumer's insert.
"""

from __future__ import annotations

import math
import time
from typing import Any

from adpulse.clickhouse.client import ClickHouseClient
from adpulse.events import EVENT_COLUMNS
from adpulse.settings import Settings
from consumers.consumer import consumer_config
from consumers.phases import PHASES, CpuPhases

PLAIN_TABLE = "events_plain"
DRAIN_TIMEOUT_S = 600.0


def bare_consumer(settings: Settings, events: int) -> dict[str, Any]:
    """Drain `events` messages with the consumer's fetch settings, discarding them."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        consumer_config(
            settings,
            **{"group.id": f"{settings.consumer_group}-bare", "client.id": "bench-bare"},
        )
    )
    assigned: list[float] = []
    consumer.subscribe(
        [settings.events_topic], on_assign=lambda *_: assigned.append(time.monotonic())
    )
    seen = 0
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    cpu0 = time.process_time()
    try:
        while seen < events and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10_000, timeout=0.1):
                if message.error() is None:
                    seen += 1
        finished = time.monotonic()
        cpu = time.process_time() - cpu0
    finally:
        consumer.close()
    if seen < events or not assigned:
        raise RuntimeError(
            f"the bare consumer read {seen:,} of {events:,} messages in "
            f"{DRAIN_TIMEOUT_S:g} s: is the broker up?"
        )
    # From the assignment (group join excluded, as for the consumer) to the last message.
    seconds = finished - assigned[0]
    return {
        "events": seen,
        "drain_seconds": round(seconds, 2),
        "events_per_second": round(seen / seconds),
        "cpu_s_per_million": round(cpu / seen * 1e6, 2),
    }


def cpu_split(cpu: CpuPhases, events: int) -> dict[str, Any]:
    """The consumer's CPU per event by phase, in microseconds, and each phase's share."""
    total = sum(cpu.seconds.values())
    return {
        "us_per_event": {p: round(cpu.seconds[p] / events * 1e6, 2) for p in PHASES},
        "share": {p: round(cpu.seconds[p] / total, 3) if total else None for p in PHASES},
    }


def _plain_ddl(client: ClickHouseClient) -> str:
    """`events`' columns (types, defaults, codecs) and keys, on a plain MergeTree."""
    db = client.database
    params = {"db": db, "t": "events"}
    columns = client.query(
        "SELECT name, type, default_kind, default_expression, compression_codec "
        "FROM system.columns WHERE database = {db:String} AND table = {t:String} "
        "ORDER BY position",
        params,
    )
    [(partition_key, sorting_key)] = client.query(
        "SELECT partition_key, sorting_key FROM system.tables "
        "WHERE database = {db:String} AND name = {t:String}",
        params,
    )
    parts = []
    for name, col_type, default_kind, default, codec in columns:
        parts.append(
            " ".join(
                p
                for p in (
                    name,
                    col_type,
                    f"{default_kind} {default}" if default_kind else "",
                    codec,
                )
                if p
            )
        )
    return (
        f"CREATE TABLE {db}.{PLAIN_TABLE} ({', '.join(parts)}) ENGINE = MergeTree "
        f"PARTITION BY {partition_key} ORDER BY ({sorting_key})"
    )


def bare_insert(client: ClickHouseClient, rows_per_insert: int) -> dict[str, Any]:
    """Insert the rows of `events` again, `rows_per_insert` at a time, into a plain MergeTree."""
    db = client.database
    client.command(f"DROP TABLE IF EXISTS {db}.{PLAIN_TABLE}")
    client.command(_plain_ddl(client))
    [(rows,)] = client.query(f"SELECT count() FROM {db}.events")
    blocks = max(1, math.ceil(rows / rows_per_insert))
    select = ", ".join(
        "toUnixTimestamp64Milli(event_time)" if c == "event_time" else f"toString({c})"
        if c in ("event_id", "event_type", "device_type") else c
        for c in EVENT_COLUMNS
    )  # fmt: skip
    cpu = wall = 0.0
    try:
        for block in range(blocks):
            found = client.query(
                f"SELECT {select} FROM {db}.events WHERE cityHash64(event_id) % {blocks} = {block}"
            )
            if not found:
                continue
            columns = dict(zip(EVENT_COLUMNS, map(list, zip(*found, strict=True)), strict=True))
            del found
            cpu0, wall0 = time.process_time(), time.monotonic()
            client.insert(PLAIN_TABLE, columns)
            cpu += time.process_time() - cpu0
            wall += time.monotonic() - wall0
        [(written,)] = client.query(f"SELECT count() FROM {db}.{PLAIN_TABLE}")
    finally:
        client.command(f"DROP TABLE IF EXISTS {db}.{PLAIN_TABLE}")
    return {
        "rows": written,
        "inserts": blocks,
        "insert_seconds": round(wall, 2),
        "rows_per_second": round(written / wall) if wall else None,
        "cpu_s_per_million": round(cpu / written * 1e6, 2) if written else None,
    }
