"""A query runner over the session's seeded chDB database, recording the SQL it ran."""

from __future__ import annotations

import pytest

from api.metrics import ApiMetrics
from api.runner import QueryRunner
from tests.api.conftest import Seeded
from tests.api.support import RecordingClient


@pytest.fixture
def recording(seeded: Seeded) -> RecordingClient:
    return RecordingClient(seeded.client)


@pytest.fixture
def runner(recording: RecordingClient) -> QueryRunner:
    return QueryRunner(recording, ApiMetrics(), timeout_s=30, send_limits=True)
