"""Snapshot checks for rendered artifacts: configs, users files and DDL."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE_HINT = "UPDATE_SNAPSHOTS=1 ./dev test tests/clickhouse"

SnapshotCheck = Callable[[dict[str, str], str], None]


def check_snapshots(files: dict[str, str], name: str) -> None:
    """Compare `files` with tests/clickhouse/snapshots/NAME/; UPDATE_SNAPSHOTS=1 rewrites it."""
    directory = SNAPSHOTS / name
    stored = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        for stale in stored - files.keys():
            (directory / stale).unlink()
        for relative, text in files.items():
            path = directory / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return
    problems = []
    for relative in sorted(stored - files.keys()):
        problems.append(f"{name}/{relative}: stored but no longer rendered")
    for relative, text in sorted(files.items()):
        path = directory / relative
        if not path.is_file():
            problems.append(f"{name}/{relative}: rendered but has no snapshot")
            continue
        expected = path.read_text(encoding="utf-8")
        if expected != text:
            diff = difflib.unified_diff(
                expected.splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"snapshot {name}/{relative}",
                "rendered",
            )
            problems.append("".join(list(diff)[:60]))
    if problems:
        pytest.fail(
            "rendered output differs from tests/clickhouse/snapshots/:\n"
            + "\n".join(problems)
            + f"\nIf the change is intended, update the snapshots with `{UPDATE_HINT}` "
            "and review the diff in git.",
            pytrace=False,
        )


@pytest.fixture
def snapshot() -> SnapshotCheck:
    return check_snapshots
