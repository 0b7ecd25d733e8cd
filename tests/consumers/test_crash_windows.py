"""SIGKILL the consumer in each crash window, restart it, and find exactly N rows.

The consumer runs as a real process on its own chDB path; the oracle reads that path from
another fresh process afterwards (a process may open one chDB path only).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from adpulse.settings import Settings
from tests.support.chdb_probe import probe
from tests.support.events import random_events
from tests.support.kafka import isolated_settings, produce_events

N = 12_000
HOUR_MS = 3_600_000
ROOT = Path(__file__).resolve().parents[2]


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADPULSE_")}
    fields = (
        "clickhouse_url", "kafka_bootstrap", "events_topic", "dlq_topic", "consumer_group",
        "batch_interval_s", "batch_max_rows", "metrics_port",
    )  # fmt: skip
    env.update({f"ADPULSE_{f.upper()}": str(getattr(settings, f)) for f in fields})
    env.update({f"ADPULSE_{k.upper()}": v for k, v in extra.items()})
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 180) -> int:
    return run_logged(args, env, timeout)[0]


def run_logged(args: list[str], env: dict[str, str], timeout: float = 180) -> tuple[int, str]:
    proc = subprocess.run(args, env=env, cwd=ROOT, timeout=timeout, capture_output=True, text=True)
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"{args} exited {proc.returncode}: {proc.stderr[-3000:]}")
    return proc.returncode, proc.stderr


@pytest.fixture
def prepared(kafka_bootstrap: str, tmp_path: Path) -> Callable[[], tuple[Settings, set[str]]]:
    def make() -> tuple[Settings, set[str]]:
        path = tmp_path / "chdb"
        settings = isolated_settings(
            kafka_bootstrap,
            f"chdb://{path}",
            topic_partitions=2,
            batch_max_rows=1_500,
            batch_interval_s=1.0,
        )
        run([sys.executable, "-m", "cli", "schema", "migrate"], env_for(settings))
        events = random_events(N, int(time.time() * 1000) - HOUR_MS, HOUR_MS, seed=77)
        produce_events(settings, events)
        return settings, {e.event_id for e in events}

    return make


@pytest.mark.parametrize(
    ("point", "after"),
    [
        ("mid_batch", 4_000),  # killed while batches are filling
        ("before_insert", 3),  # batch recorded, insert not sent
        ("after_insert", 3),  # insert acknowledged, offsets not committed
        ("after_commit", 2),  # between batches
    ],
)
def test_restart_after_sigkill_gives_exactly_n_rows(
    prepared: Callable[[], tuple[Settings, set[str]]], point: str, after: int
) -> None:
    settings, ids = prepared()
    consume = [sys.executable, "-m", "consumers", "4"]

    crashed = run(consume, env_for(settings, fault_crash_at=point, fault_crash_after=str(after)))
    assert crashed == -signal.SIGKILL, f"the crash point {point} was never reached"
    code, log = run_logged(consume, env_for(settings))
    assert code == 0
    # Crashes with a recorded batch must take the rebuild path (same bounds, same token).
    assert ("rebuilding batch" in log) == (point in ("before_insert", "after_insert")), log[-2000:]

    assert settings.clickhouse_url.startswith("chdb://")
    verdict = probe(settings.clickhouse_url.removeprefix("chdb://"))
    assert verdict.rows == N, f"{verdict.rows - N:+d} rows after a crash at {point}"
    assert verdict.ids == ids
    assert all(verdict.rollups_match.values()), verdict.rollups_match


def committed_total(settings: Settings) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": settings.consumer_group}
    )
    try:
        parts = consumer.list_topics(settings.events_topic, timeout=10).topics
        tps = [
            TopicPartition(settings.events_topic, p)
            for p in parts[settings.events_topic].partitions
        ]
        return sum(max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10))
    finally:
        consumer.close()


def test_sigterm_flushes_commits_exits_and_serves_metrics_meanwhile(
    prepared: Callable[[], tuple[Settings, set[str]]],
) -> None:
    import urllib.request

    from tests.support.clickhouse_server import free_port

    settings, ids = prepared()
    port = free_port()
    env = env_for(settings, metrics_port=str(port), batch_interval_s="30")
    proc = subprocess.Popen([sys.executable, "-m", "consumers"], env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        text = ""
        while time.monotonic() < deadline and "adpulse_rows_written_total" not in text:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
            except OSError:
                time.sleep(0.3)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
            if 'adpulse_consumer_lag{partition="0"}' in text and "adpulse_batch_rows_count" in text:
                break
            time.sleep(0.5)
        for name in (
            "adpulse_consumer_lag{",
            "adpulse_rows_per_second",
            "adpulse_batch_rows_bucket",
            "adpulse_insert_seconds_bucket",
            "adpulse_dead_letters_total",
            "adpulse_freshness_seconds",
        ):
            assert name in text or name.replace("_total", "") in text, name

        # Batches are still filling (30 s interval): SIGTERM must flush and commit them.
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert time.monotonic() - started < 20
    finally:
        if proc.poll() is None:
            proc.kill()

    written = probe(settings.clickhouse_url.removeprefix("chdb://")).rows
    assert written > 0
    assert committed_total(settings) == written

    assert run([sys.executable, "-m", "consumers", "4"], env_for(settings)) == 0
    verdict = probe(settings.clickhouse_url.removeprefix("chdb://"))
    assert verdict.rows == N and verdict.ids == ids
