"""Snapshot checks for rendered artifacts: configs, users files and DDL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.snapshots import check_snapshots as compare

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE_HINT = "UPDATE_SNAPSHOTS=1 ./dev test tests/clickhouse"

SnapshotCheck = Callable[[dict[str, str], str], None]


def check_snapshots(files: dict[str, str], name: str) -> None:
    """Compare `files` with tests/clickhouse/snapshots/NAME/; UPDATE_SNAPSHOTS=1 rewrites it."""
    compare(files, SNAPSHOTS / name, label=f"{name}/", what="rendered files",
            where="tests/clickhouse/snapshots/", hint=UPDATE_HINT)  # fmt: skip


@pytest.fixture
def snapshot() -> SnapshotCheck:
    return check_snapshots
