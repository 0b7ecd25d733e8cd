"""The dashboard in local mode: install and build it when needed, serve it, stop it.

The dashboard is a Next.js app in `dashboard/`. `next start` serves its pages and forwards
`/api/v1/*` to the API with the API key it holds, so the browser sees one origin and no key.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import typer

from adpulse.errors import AdpulseError
from adpulse.local import processes
from adpulse.settings import Settings

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "dashboard"
MIN_NODE = (20, 9)  # Next.js 16
# What `next build` reads; tests and the e2e scripts are left out on purpose.
BUILD_INPUTS = (
    "app",
    "src",
    "public",
    "next.config.ts",
    "tsconfig.json",
    "package.json",
    "package-lock.json",
)
_LOCK_STAMP = ".adpulse-package-lock.sha256"
_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0
_INSTALL_HINT = (
    "install Node.js {need} or newer with npm (https://nodejs.org/en/download, or Debian's "
    "NodeSource packages; bookworm's own nodejs is too old)"
)


class DashboardError(AdpulseError):
    """The dashboard cannot be installed, built or started."""


def parse_node_version(text: str) -> tuple[int, int]:
    """`v20.20.2` -> (20, 20)."""
    match = re.match(r"v?(\d+)\.(\d+)", text.strip())
    if not match:
        raise DashboardError(f"cannot read the Node.js version from {text.strip()!r}")
    return int(match[1]), int(match[2])


def find_node() -> tuple[str, str]:
    """Paths of `node` and `npm`, checked to be new enough for Next.js."""
    need = ".".join(map(str, MIN_NODE))
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(n for n, p in (("node", node), ("npm", npm)) if p is None)
        raise DashboardError(
            f"the dashboard needs {missing}, not found on PATH: " + _INSTALL_HINT.format(need=need)
        )
    found = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=False, timeout=30
    ).stdout
    if parse_node_version(found) < MIN_NODE:
        raise DashboardError(
            f"Node.js {found.strip()} is too old for the dashboard: "
            + _INSTALL_HINT.format(need=need)
        )
    return node, npm


def lock_digest(root: Path) -> str:
    return hashlib.sha256((root / "package-lock.json").read_bytes()).hexdigest()


def needs_install(root: Path) -> bool:
    """node_modules is missing or was installed from another package-lock.json."""
    stamp = root / "node_modules" / _LOCK_STAMP
    return not stamp.exists() or stamp.read_text().strip() != lock_digest(root)


def _newest_input(root: Path) -> float:
    newest = 0.0
    for name in BUILD_INPUTS:
        path = root / name
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
        elif path.is_dir():
            for file in path.rglob("*"):
                if file.is_file() and not re.search(r"\.test\.tsx?$", file.name):
                    newest = max(newest, file.stat().st_mtime)
    return newest


def needs_build(root: Path) -> bool:
    """No production build yet, or a source file is newer than it."""
    build_id = root / ".next" / "BUILD_ID"
    return not build_id.exists() or _newest_input(root) > build_id.stat().st_mtime


def dashboard_env(
    base: Mapping[str, str], api_url: str, api_key: str | None, port: int
) -> dict[str, str]:
    """The environment of `next start`: where the API is, and the key only the server holds."""
    env = {k: v for k, v in base.items() if k != "ADPULSE_API_KEY"}
    env |= {
        "ADPULSE_API_URL": api_url,
        "PORT": str(port),
        "HOSTNAME": "127.0.0.1",
        "NODE_ENV": "production",
        "NEXT_TELEMETRY_DISABLED": "1",
    }
    if api_key:
        env["ADPULSE_API_KEY"] = api_key
    return env


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _run_step(args: list[str], what: str, log: Path, env: Mapping[str, str]) -> None:
    with log.open("ab") as out:
        done = subprocess.run(
            args, cwd=DASHBOARD_DIR, env=dict(env), stdout=out, stderr=out, check=False
        )
    if done.returncode != 0:
        raise DashboardError(
            f"{what} failed (exit {done.returncode}); the log is {log}. Its last lines:\n"
            f"{_tail(log)}"
        )


@contextmanager
def _build_lock() -> Iterator[None]:
    """One install or build at a time, across processes sharing this checkout."""
    with (DASHBOARD_DIR / ".build.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_built(node: str, npm: str, logs: Path) -> None:
    """`npm ci` when package-lock.json changed, `next build` when a source is newer."""
    env = {**os.environ, "NEXT_TELEMETRY_DISABLED": "1"}
    with _build_lock():
        if needs_install(DASHBOARD_DIR):
            typer.echo(f"Dashboard   installing npm packages (log {logs / 'dashboard-build.log'})")
            _run_step(
                [npm, "ci", "--no-audit", "--no-fund"],
                "npm ci in dashboard/",
                logs / "dashboard-build.log",
                env,
            )
            stamp = DASHBOARD_DIR / "node_modules" / _LOCK_STAMP
            stamp.write_text(lock_digest(DASHBOARD_DIR) + "\n")
        if needs_build(DASHBOARD_DIR):
            typer.echo("Dashboard   building for production, about a minute (sources changed)")
            _run_step(
                [node, str(_next_bin()), "build"],
                "next build in dashboard/",
                logs / "dashboard-build.log",
                env,
            )


def _next_bin() -> Path:
    return DASHBOARD_DIR / "node_modules" / "next" / "dist" / "bin" / "next"


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own http URL)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _wait_until_answers(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DashboardError(
                f"the dashboard server exited with code {proc.returncode}; see {log}:\n{_tail(log)}"
            )
        if _answers(url):
            return
        time.sleep(0.2)
    raise DashboardError(f"the dashboard did not answer at {url} within {_START_TIMEOUT_S:.0f} s")


@contextmanager
def run_dashboard(
    settings: Settings, api_url: str, api_key: str | None, logs: Path
) -> Iterator[str]:
    """Serve the production build on 127.0.0.1:dashboard_port, yield its URL, stop it on exit.

    Installs npm packages and builds first when needed (minutes on a first run). Raises
    DashboardError (an AdpulseError) when Node.js is missing, the port is taken, or the build
    or the server fails; the server's output goes to `logs/dashboard.log`.
    """
    node, npm = find_node()
    port = settings.dashboard_port
    if _port_taken(port):
        raise DashboardError(
            f"port {port} on 127.0.0.1 is taken, so the dashboard cannot start there; stop what "
            "listens on it or set ADPULSE_DASHBOARD_PORT"
        )
    logs.mkdir(parents=True, exist_ok=True)
    ensure_built(node, npm, logs)
    url = f"http://127.0.0.1:{port}"
    log = logs / "dashboard.log"
    with log.open("ab") as out:
        # Stopped by us, in order, not by the terminal's Ctrl-C; dies with us if we are killed.
        proc = processes.spawn(
            [node, str(_next_bin()), "start", "-p", str(port), "-H", "127.0.0.1"],
            cwd=DASHBOARD_DIR,
            env=dashboard_env(os.environ, api_url, api_key, port),
            out=out,
        )
    try:
        _wait_until_answers(f"{url}/healthz", proc, log)
        yield url
    finally:
        processes.stop(proc, timeout=_STOP_TIMEOUT_S)
