"""Ingest benchmark: Kafka (tansu, on this machine) -> one consumer -> chDB.

1. Throughput: pre-fill a topic with N events, then time one consumer draining it: events/s
   and CPU seconds per million events (consumer process; the broker's CPU reported apart),
   and the consumer's CPU split by phase. Beside it, from the same run (`bench.ingest_baselines`):
   a bare consumer draining the same topic, and a plain insert of the same rows; the ratios
   are the figures to compare between machines.
2. Freshness: the generator produces at a steady rate while the consumer runs with a given
   flush interval; per-event freshness is `ingested_at - event_time` (the server stamps
   `ingested_at` when the insert lands, the generator stamps `event_time` when it draws the
   event), reported as P50/P95/P99 from ClickHouse itself.
3. Instructions: the consumer's per-event hot path counted over a fixed sample
   (`bench.instructions`): the one figure that does not depend on the machine's speed or load.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from adpulse.clickhouse.client import ClickHouseClient
from adpulse.clickhouse.connection import connect
from adpulse.clickhouse.migrate import Migrator
from adpulse.clickhouse.schema import SchemaOptions
from adpulse.events import encode
from adpulse.kafka.broker import local_broker
from adpulse.kafka.topics import apply_topics
from adpulse.settings import Settings, load_settings
from adpulse.topology import single
from adpulse.traffic import TrafficModel, iter_events
from bench.ingest_baselines import bare_consumer, bare_insert, cpu_split
from bench.instructions import CounterUnavailable
from bench.instructions import measure as count_instructions
from bench.instructions import render as render_instructions
from bench.machine import cpu_seconds, machine
from bench.schema import NoSamples
from consumers.consumer import IngestConsumer
from consumers.gc_tuning import tune_for_ingest

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATH = "/tmp/adpulse-bench/ingest-chdb"
# Freshness skips the first seconds: the consumer's first flush after the group forms is not
# steady state.
WARMUP_S = 10.0
# The consumer's events/s as a share of a bare consumer's on the same topic (issue 15).
TARGET_RATE_VS_BARE = 0.5


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tansu_pid(port: int) -> int | None:
    out = subprocess.run(["pgrep", "-f", f"broker --listener-url tcp://127.0.0.1:{port}"],
                         capture_output=True, text=True).stdout.split()  # fmt: skip
    return int(out[0]) if out else None


def _prefill(settings: Settings, events: int) -> float:
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 2_000_000,
            "log.connection.close": False,
        }
    )
    stream = iter_events(TrafficModel(), random.Random(1), lambda: int(time.time() * 1000), 5000)
    started = time.monotonic()
    for i in range(events):
        event = next(stream)
        while True:
            try:
                producer.produce(settings.events_topic, encode(event), event.event_id.encode())
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(120)
    return time.monotonic() - started


def _fresh_db(path: str) -> ClickHouseClient:
    shutil.rmtree(path, ignore_errors=True)
    client = connect(f"chdb://{path}")
    Migrator(client, single(), SchemaOptions(client.database)).migrate()
    return client


def _watch(
    consumer: IngestConsumer, samples: list[tuple[float, float, float]], stop: threading.Event
) -> None:
    """Every 20 ms: (time, rows written, rows read but not yet written)."""
    metrics = consumer.metrics
    while not stop.wait(0.02):
        samples.append(
            (time.monotonic(), metrics.rows._value.get(), metrics.buffered_rows._value.get())
        )


def drain_window(samples: list[tuple[float, float, float]], events: int) -> tuple[float, float]:
    """From the last sample before the consumer held any row to the first with all written.

    Group join and the idle wait before `run` returns fall outside; the first batch's reading
    time falls inside (a window that opens when the first batch lands would leave it out).
    """
    started = next(i for i, (_, rows, held) in enumerate(samples) if rows or held)
    first_t = samples[max(started - 1, 0)][0]
    last_t = next(t for t, rows, _ in samples if rows >= events)
    return first_t, last_t


def throughput(bootstrap: str, client: ClickHouseClient, events: int, port: int) -> dict[str, Any]:
    settings = load_settings(
        kafka_bootstrap=bootstrap, topic_partitions=1, events_topic="bench-throughput",
        dlq_topic="bench-throughput-dlq", consumer_group="bench-throughput",
        batch_max_rows=200_000, batch_interval_s=5, metrics_port=0,
    )  # fmt: skip
    apply_topics(settings)
    print(f"prefilling {events:,} events ...", flush=True)
    produce_s = _prefill(settings, events)
    print("baseline: a bare consumer drains the same topic ...", flush=True)
    bare = bare_consumer(settings, events)
    broker_pid = _tansu_pid(port)
    broker_cpu0 = cpu_seconds(broker_pid) if broker_pid else 0.0
    tune_for_ingest()  # as `adpulse consume` does
    consumer = IngestConsumer(settings, client, stop_after_idle=3)
    samples: list[tuple[float, float, float]] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(consumer, samples, stop), daemon=True)
    watcher.start()
    cpu0 = time.process_time()
    consumer.run()
    cpu = time.process_time() - cpu0
    stop.set()
    watcher.join()
    samples.append((time.monotonic(), consumer.metrics.rows._value.get(), 0.0))
    first_t, last_t = drain_window(samples, events)
    seconds = last_t - first_t
    rows = client.query(f"SELECT count() FROM {client.database}.events")[0][0]
    broker_cpu = (cpu_seconds(broker_pid) - broker_cpu0) if broker_pid else None
    print("baseline: the same rows into a plain MergeTree ...", flush=True)
    plain = bare_insert(client, settings.batch_max_rows)
    split = cpu_split(consumer.cpu, events)
    insert_us = split["us_per_event"]["insert"]
    rate = round(events / seconds)
    return {
        "events": events,
        "rows_in_clickhouse": rows,
        "prefill_seconds": round(produce_s, 1),
        "drain_seconds": round(seconds, 2),
        "events_per_second": rate,
        "consumer_cpu_s_per_million": round(cpu / events * 1e6, 2),
        "broker_cpu_s_per_million": round(broker_cpu / events * 1e6, 2) if broker_cpu else None,
        "consumer_cpu_split": split,
        "bare_consumer": bare,
        "bare_insert": plain,
        # The ratios: what is comparable between machines.
        "rate_vs_bare_consumer": round(rate / bare["events_per_second"], 3),
        "insert_cpu_vs_bare_insert": (
            round(insert_us / plain["cpu_s_per_million"], 2) if plain["cpu_s_per_million"] else None
        ),
        "target_rate_vs_bare_consumer": TARGET_RATE_VS_BARE,
    }


def freshness(bootstrap: str, client: ClickHouseClient, rate: float, flush_s: float,
              duration: float) -> dict[str, Any]:  # fmt: skip
    name = f"bench-fresh-{flush_s:g}s".replace(".", "_")
    settings = load_settings(
        kafka_bootstrap=bootstrap, topic_partitions=3, events_topic=name, dlq_topic=f"{name}-dlq",
        consumer_group=name, batch_interval_s=flush_s, metrics_port=0,
    )  # fmt: skip
    apply_topics(settings)
    client.command(f"TRUNCATE TABLE {client.database}.events")
    consumer = IngestConsumer(settings, client)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    time.sleep(5)  # let the group form before timing anything
    env = {**os.environ, "ADPULSE_KAFKA_BOOTSTRAP": bootstrap, "ADPULSE_EVENTS_TOPIC": name}
    gen = subprocess.run(
        [sys.executable, "-m", "cli", "generate", "--rate", str(rate), "--duration",
         str(duration), "--json"],
        env=env, cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    time.sleep(flush_s + 2)
    consumer.stop()
    thread.join(60)
    import orjson

    sent = orjson.loads(gen.stdout)
    db = client.database
    p50, p95, p99, n = client.query(
        "SELECT quantilesExact(0.5, 0.95, 0.99)(lag)[1], quantilesExact(0.5, 0.95, 0.99)(lag)[2],"
        " quantilesExact(0.5, 0.95, 0.99)(lag)[3], count() FROM ("
        f"SELECT toFloat64(ingested_at) - toFloat64(event_time) AS lag FROM {db}.events "
        f"WHERE event_time >= (SELECT min(event_time) FROM {db}.events) "
        f"+ INTERVAL {WARMUP_S:g} SECOND)"
    )[0]
    if not n:
        raise NoSamples(
            f"freshness at flush {flush_s:g} s: no event written after the first "
            f"{WARMUP_S:g} s, which are skipped as warm-up ({sent['sent']:,} sent in "
            f"{duration:g} s); run longer than {WARMUP_S:g} s, e.g. --duration 40"
        )
    return {
        "rate": rate,
        "achieved_rate": round(sent["rate"]),
        "flush_interval_s": flush_s,
        "events_sent": sent["sent"],
        "events_measured": n,
        "freshness_p50_s": round(p50, 2),
        "freshness_p95_s": round(p95, 2),
        "freshness_p99_s": round(p99, 2),
    }


def instructions_report() -> dict[str, Any]:
    """The hot path's instruction count, or why it could not be counted here."""
    print("counting the hot path's instructions ...", flush=True)
    try:
        return count_instructions()
    except CounterUnavailable as exc:
        return {"error": str(exc)}


def run(
    events: int, rate: float, duration: float, path: str, *, instructions: bool = True
) -> dict[str, Any]:
    report: dict[str, Any] = {"machine": machine()}
    port = _free_port()
    with local_broker(port) as bootstrap:
        client = _fresh_db(path)
        try:
            report["throughput"] = throughput(bootstrap, client, events, port)
            report["freshness"] = [
                freshness(bootstrap, client, rate, flush, duration) for flush in (5.0, 1.0)
            ]
        finally:
            client.close()
    # Last: it needs no broker, and a run that failed above has no use for it.
    report["instructions"] = instructions_report() if instructions else {"error": "not asked for"}
    return report


def render(report: dict[str, Any]) -> str:
    t, m = report["throughput"], report["machine"]
    bare, plain, split = t["bare_consumer"], t["bare_insert"], t["consumer_cpu_split"]
    lines = [
        f"machine: {m['cpu_model']} x{m['cpus']}, load {m['load_average_1m']}, {m['at']}",
        render_instructions(report["instructions"]),
        f"throughput: {t['events']:,} events drained in {t['drain_seconds']} s = "
        f"{t['events_per_second']:,}/s = {t['rate_vs_bare_consumer']}x the bare consumer's "
        f"{bare['events_per_second']:,}/s (target >= {t['target_rate_vs_bare_consumer']}x); "
        f"consumer CPU {t['consumer_cpu_s_per_million']} s per million (bare consumer "
        f"{bare['cpu_s_per_million']}, broker {t['broker_cpu_s_per_million']})",
        "consumer CPU per event (us): "
        + ", ".join(f"{p} {us}" for p, us in split["us_per_event"].items()),
        f"insert: {split['us_per_event']['insert']} us/event with views and projections = "
        f"{t['insert_cpu_vs_bare_insert']}x a plain MergeTree's {plain['cpu_s_per_million']} "
        f"({plain['rows_per_second']:,} rows/s)",
    ]
    for f in report["freshness"]:
        lines.append(
            f"freshness at {f['achieved_rate']:,}/s, flush {f['flush_interval_s']:g} s: "
            f"P50 {f['freshness_p50_s']} s, P95 {f['freshness_p95_s']} s, "
            f"P99 {f['freshness_p99_s']} s over {f['events_measured']:,} events"
        )
    return "\n".join(lines)
