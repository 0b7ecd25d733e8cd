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

N = 24_000
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
    proc = subprocess.run(args, env=env, cwd=ROOT, timeout=timeout, capture_output=True, text=True)
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"{args} exited {proc.returncode}: {proc.stderr[-3000:]}")
    return proc.returncode


@pytest.fixture
def prepared(kafka_bootstrap: str, tmp_path: Path) -> Callable[[], tuple[Settings, set[str]]]:
    def make() -> tuple[Settings, set[str]]:
        path = tmp_path / "chdb"
        settings = isolated_settings(
            kafka_bootstrap,
            f"chdb://{path}",
            topic_partitions=2,
            batch_max_rows=2_500,
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
        ("mid_batch", 7_000),  # killed while batches are filling
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
    assert run(consume, env_for(settings)) == 0

    assert settings.clickhouse_url.startswith("chdb://")
    verdict = probe(settings.clickhouse_url.removeprefix("chdb://"))
    assert verdict.rows == N, f"{verdict.rows - N:+d} rows after a crash at {point}"
    assert verdict.ids == ids
    assert all(verdict.rollups_match.values()), verdict.rollups_match
