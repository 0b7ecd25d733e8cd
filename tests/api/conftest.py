"""API fixtures: one seeded embedded database per session, apps built on it per test.

The events span the 75 hours before the session started, so ranges can hit the minute
rollup (last 2 days), the raw fallback (older minutes) and the hourly and daily rollups.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi import FastAPI

from adpulse.clickhouse.client import ClickHouseClient
from adpulse.clickhouse.connection import connect
from adpulse.clickhouse.migrate import Migrator
from adpulse.clickhouse.schema import SchemaOptions
from adpulse.events import to_columns
from adpulse.metadata.campaigns import CampaignMeta, upsert
from adpulse.metadata.store import MetadataStore, create_store_engine
from adpulse.settings import load_settings
from adpulse.topology import single
from api.app import create_app
from tests.api.support import RecordingClient, boundary_events, ms
from tests.support.events import random_events

REDIS_URL = "redis://127.0.0.1:6379/0"
SPAN = timedelta(hours=75)


@dataclass(frozen=True)
class Seeded:
    client: ClickHouseClient
    url: str
    now: datetime  # every event is before this


@pytest.fixture(scope="session")
def seeded(chdb_path: Path) -> Iterator[Seeded]:
    url = f"chdb://{chdb_path}?database=api_{secrets.token_hex(4)}"
    client = connect(url)
    Migrator(client, single(), SchemaOptions(database=client.database)).migrate()
    now = datetime.now(UTC)
    start = now - SPAN
    events = random_events(40_000, ms(start), ms(now) - ms(start) - 1_000, seed=21)
    events += boundary_events(start, now - timedelta(seconds=1))
    for i in range(0, len(events), 10_000):
        client.insert("events", to_columns(events[i : i + 10_000]))
    yield Seeded(client, url, now)
    client.command(f"DROP DATABASE IF EXISTS {client.database} SYNC")
    client.close()


def named_store(directory: Path) -> MetadataStore:
    """An embedded (SQLite) metadata store with names for campaigns 1-20."""
    opened = MetadataStore(create_store_engine(f"sqlite:///{directory}/metadata.sqlite3"))
    opened.migrate()
    upsert(
        opened,
        [
            CampaignMeta(
                i, f"Campaign {i:02d}", f"Advertiser {i % 4}", "paused" if i % 5 else "active"
            )
            for i in range(1, 21)
        ],
    )
    return opened


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetadataStore]:
    opened = named_store(tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def recording(seeded: Seeded) -> RecordingClient:
    return RecordingClient(seeded.client)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of the shared Redis for this test only; its keys are deleted afterwards."""
    prefix = f"adpulse-test:{secrets.token_hex(6)}"
    yield prefix
    conn = redis.Redis.from_url(REDIS_URL)
    keys = list(conn.scan_iter(match=f"{prefix}:*"))
    if keys:
        conn.delete(*keys)
    conn.close()


AppFactory = Callable[..., FastAPI]


def app_factory(seeded: Seeded, recording: ClickHouseClient, store: MetadataStore) -> AppFactory:
    """Build the app on the seeded database (recording its SQL) with settings overrides."""

    def make(
        *,
        auth_required: bool = False,
        client: ClickHouseClient | None = None,
        app_store: MetadataStore | None = None,
        clock: Callable[[], datetime] | None = None,
        **overrides: Any,
    ) -> FastAPI:
        settings = load_settings(
            clickhouse_url=seeded.url,
            **{"redis_url": None, "cache_prefix": f"t{secrets.token_hex(4)}", **overrides},
        )
        return create_app(
            settings,
            client or recording,
            auth_required=auth_required,
            store=app_store or store,
            clock=clock,
        )

    return make


@pytest.fixture
def make_app(seeded: Seeded, recording: RecordingClient, store: MetadataStore) -> AppFactory:
    return app_factory(seeded, recording, store)


@pytest.fixture(scope="module")
def make_module_app(
    seeded: Seeded, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppFactory]:
    """`make_app` for a whole module (fast suites that do not look at recorded SQL)."""
    opened = named_store(tmp_path_factory.mktemp("metadata"))
    yield app_factory(seeded, seeded.client, opened)
    opened.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
