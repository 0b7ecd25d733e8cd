"""Consumer tests: a real broker (tansu), real chDB, a unique topic pair and group per test."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from adpulse.clickhouse.client import ClickHouseClient
from adpulse.clickhouse.migrate import Migrator
from adpulse.clickhouse.schema import SchemaOptions
from adpulse.settings import Settings
from adpulse.topology import single
from consumers.consumer import IngestConsumer, Summary
from tests.support.kafka import isolated_settings


@pytest.fixture
def schema(chdb_db: ClickHouseClient) -> ClickHouseClient:
    Migrator(chdb_db, single(), SchemaOptions(database=chdb_db.database)).migrate()
    return chdb_db


@pytest.fixture
def settings_for(kafka_bootstrap: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return isolated_settings(kafka_bootstrap, "chdb://unused", **overrides)

    return make


@dataclass
class Running:
    consumer: IngestConsumer
    thread: threading.Thread
    result: list[Summary] = field(default_factory=list)

    def stop(self, timeout: float = 30) -> Summary:
        self.consumer.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "consumer did not stop in time"
        return self.result[0]


@pytest.fixture
def start_consumer() -> Iterator[Callable[..., Running]]:
    """Run IngestConsumers in threads (they share this process's chDB session)."""
    running: list[Running] = []

    def start(settings: Settings, client: ClickHouseClient, **kw: Any) -> Running:
        consumer = IngestConsumer(settings, client, **kw)
        run = Running(consumer, threading.Thread(target=lambda: None, daemon=True))
        run.thread = threading.Thread(target=lambda: run.result.append(consumer.run()), daemon=True)
        run.thread.start()
        running.append(run)
        return run

    yield start
    for run in running:
        if run.thread.is_alive():
            run.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def count_rows(client: ClickHouseClient) -> int:
    return int(client.query(f"SELECT count() FROM {client.database}.events")[0][0])
