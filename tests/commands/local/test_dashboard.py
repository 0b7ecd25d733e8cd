"""The pure parts of `commands.local.dashboard`: versions, staleness, and the server's env."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from commands.local import dashboard
from commands.local.dashboard import (
    DashboardError,
    dashboard_env,
    lock_digest,
    needs_build,
    needs_install,
    parse_node_version,
)


@pytest.mark.parametrize(("text", "version"), [("v20.20.2\n", (20, 20)), ("22.1.0", (22, 1))])
def test_parse_node_version(text: str, version: tuple[int, int]) -> None:
    assert parse_node_version(text) == version


def test_parse_node_version_says_what_it_read() -> None:
    with pytest.raises(DashboardError, match="'nonsense'"):
        parse_node_version("nonsense")


def test_missing_node_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DashboardError, match=r"needs node and npm.*install Node\.js 20\.9"):
        dashboard.find_node()


def _app(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "page.tsx").write_text("export {};")
    (root / "package-lock.json").write_text('{"lockfileVersion": 3}')
    return root


def _touch(path: Path, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.utime(path, (mtime, mtime))


def test_install_when_node_modules_is_missing_or_the_lock_changed(tmp_path: Path) -> None:
    root = _app(tmp_path)
    assert needs_install(root)
    stamp = root / "node_modules" / ".adpulse-package-lock.sha256"
    stamp.parent.mkdir()
    stamp.write_text(lock_digest(root) + "\n")
    assert not needs_install(root)
    (root / "package-lock.json").write_text('{"lockfileVersion": 3, "packages": {}}')
    assert needs_install(root)


def test_build_when_missing_or_a_source_is_newer(tmp_path: Path) -> None:
    root = _app(tmp_path)
    assert needs_build(root)
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (1000, 1000))
    _touch(root / ".next" / "BUILD_ID", 2000)
    assert not needs_build(root)
    _touch(root / "src" / "lib" / "format.test.ts", 3000)
    assert not needs_build(root), "a test file is not a build input"
    _touch(root / "src" / "lib" / "format.ts", 3000)
    assert needs_build(root)


def test_server_env_holds_the_key_only_when_given() -> None:
    base = {"PATH": "/usr/bin", "ADPULSE_API_KEY": "inherited-key-from-the-shell"}
    env = dashboard_env(base, "http://127.0.0.1:8000", None, 3000)
    assert "ADPULSE_API_KEY" not in env
    assert env["ADPULSE_API_URL"] == "http://127.0.0.1:8000"
    assert env["PORT"] == "3000"
    assert env["NEXT_TELEMETRY_DISABLED"] == "1"
    assert env["PATH"] == "/usr/bin"
    assert dashboard_env(base, "http://api", "key-1234567890", 1)["ADPULSE_API_KEY"] == (
        "key-1234567890"
    )
