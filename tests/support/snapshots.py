"""Snapshot checks of rendered files: one mechanism for the ClickHouse configs and DDL
(tests/clickhouse) and the deploy's units and env files (tests/deploy)."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest


def check_snapshots(
    files: dict[str, str], directory: Path, *, label: str, what: str, where: str, hint: str
) -> None:
    """Compare `files` (relative path -> text) with the files under `directory`;
    UPDATE_SNAPSHOTS=1 rewrites the directory instead. `label` prefixes each path in the
    problems, `what` and `where` name the rendered files and their snapshot folder."""
    stored = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        for stale in stored - files.keys():
            (directory / stale).unlink()
        for relative, text in files.items():
            path = directory / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return
    problems = [f"{label}{r}: stored but no longer rendered" for r in sorted(stored - files.keys())]
    for relative, text in sorted(files.items()):
        path = directory / relative
        if not path.is_file():
            problems.append(f"{label}{relative}: rendered but has no snapshot")
        elif (expected := path.read_text(encoding="utf-8")) != text:
            diff = difflib.unified_diff(
                expected.splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"snapshot {label}{relative}",
                "rendered",
            )
            problems.append("".join(list(diff)[:60]))
    if problems:
        pytest.fail(
            f"{what} differ from {where}:\n"
            + "\n".join(problems)
            + f"\nIf the change is intended, update them with `{hint}` and review the diff in git.",
            pytrace=False,
        )
