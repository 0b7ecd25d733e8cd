"""Real services for the test suite, started once per session.

chDB allows one data path per process, so every test shares one embedded session and gets
its own database instead (`chdb_db`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from adpulse.clickhouse.client import ClickHouseClient
from adpulse.clickhouse.connection import connect

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb") / "data"


@pytest.fixture(scope="session")
def chdb_client(chdb_path: Path) -> Iterator[ClickHouseClient]:
    """A client on the session's embedded engine, database `adpulse`."""
    client = connect(f"chdb://{chdb_path}")
    yield client
    client.close()


@pytest.fixture
def chdb_factory(chdb_path: Path) -> Iterator[Callable[[], ClickHouseClient]]:
    """Open clients on fresh databases of the shared embedded engine; dropped afterwards."""
    opened: list[ClickHouseClient] = []

    def make() -> ClickHouseClient:
        client = connect(f"chdb://{chdb_path}?database=t{next(_db_counter)}")
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.command(f"DROP DATABASE IF EXISTS {client.database} SYNC")
        client.close()


@pytest.fixture
def chdb_db(chdb_factory: Callable[[], ClickHouseClient]) -> ClickHouseClient:
    """A client on a fresh, empty database of the shared embedded engine."""
    return chdb_factory()


@pytest.fixture(scope="session")
def native_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Native port of a real (old, Debian) clickhouse-server for protocol tests."""
    from tests.support.clickhouse_server import clickhouse_server

    with clickhouse_server(tmp_path_factory.mktemp("clickhouse-server")) as port:
        yield port


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real Kafka-protocol broker (tansu) for the whole session; tests use unique topics."""
    from adpulse.kafka.broker import local_broker
    from tests.support.clickhouse_server import free_port

    with local_broker(free_port()) as bootstrap:
        yield bootstrap


def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake keys for moto, so nothing can reach a real account, and no metadata service."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # Never ask the instance metadata service (a link-local address) for a region or keys.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials anywhere boto3 looks (environment, files, containers, instance metadata)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "BOTO_CONFIG"):
        monkeypatch.setenv(name, str(tmp_path / "absent"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def cloudwatch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's CloudWatch in us-east-1, with fake credentials so nothing can reach a real
    account (imported here, not at the top: most tests never need boto3 or moto)."""
    import boto3
    from moto import mock_aws

    fake_aws_credentials(monkeypatch)
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="us-east-1")
