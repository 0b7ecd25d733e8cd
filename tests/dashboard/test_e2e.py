"""The dashboard end to end: `adpulse up` with the generator running, driven by headless
Debian Chromium through `dashboard/e2e/run.mjs` (playwright-core, never a downloaded browser).

The stack runs as a subprocess on its own state directory, chDB path and ports, and is always
stopped (SIGINT, then SIGKILL). Screenshots of the main views and the exported CSV go to
test-artifacts/dashboard/.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.clickhouse_server import free_port
from tests.support.processes import descendants, wait_gone

# A cold checkout installs npm packages and builds first: longer than the suite's 300 s limit.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboard"
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
CHROMIUM = Path("/usr/bin/chromium")
# A modest rate: the machine also runs the consumer, the API, Next.js and Chromium.
UP_COMMAND = [str(ROOT / ".venv" / "bin" / "adpulse"), "up", "--rate", "500"]
START_TIMEOUT_S = 900.0
E2E_TIMEOUT_S = 600.0
SETUP_HINT = "run scripts/dashboard-deps.sh (installs Debian's chromium and the npm packages)"


@dataclass(frozen=True)
class Stack:
    url: str
    api_url: str
    log: Path
    pid: int
    ports: tuple[int, ...]  # every port `adpulse up` listens on or started a listener on

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT as Ctrl-C would send it; the whole process group is killed if that hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    for needed, what in (
        (CHROMIUM.exists(), f"{CHROMIUM} is missing"),
        (shutil.which("node") is not None, "node is not on PATH"),
        ((DASHBOARD / "node_modules" / "playwright-core").exists(), "dashboard/node_modules"),
    ):
        if not needed:
            pytest.fail(f"{what}: {SETUP_HINT}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_factory.mktemp("dashboard-e2e")
    api_port, dashboard_port, kafka_port, metrics_port = (free_port() for _ in range(4))
    env = {
        **os.environ,
        "ADPULSE_STATE_DIR": str(tmp / "state"),
        "ADPULSE_CLICKHOUSE_URL": f"chdb://{tmp / 'chdb'}",
        "ADPULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
        "ADPULSE_API_PORT": str(api_port),
        "ADPULSE_DASHBOARD_PORT": str(dashboard_port),
        "ADPULSE_METRICS_PORT": str(metrics_port),
    }
    env.pop("ADPULSE_API_KEY", None)
    log = tmp / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            UP_COMMAND,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = Stack(
        f"http://127.0.0.1:{dashboard_port}",
        f"http://127.0.0.1:{api_port}",
        log,
        proc.pid,
        (api_port, dashboard_port, kafka_port, metrics_port),
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        # Ready once the dashboard answers and `adpulse up` has said where (it says so after).
        while not (_answers(f"{stack.url}/healthz") and stack.url in stack.output()):
            if proc.poll() is not None:
                pytest.fail(f"adpulse up exited with {proc.returncode}:\n{_tail(stack.output())}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the dashboard did not answer at {stack.url}, or adpulse up did not print "
                    f"that URL, within {START_TIMEOUT_S:.0f} s; it said:\n{_tail(stack.output())}"
                )
            time.sleep(1)
        yield stack
    finally:
        _stop(proc)
        shutil.copy(log, ARTIFACTS / "adpulse-up.log")


def test_adpulse_up_prints_the_dashboard_url(stack: Stack) -> None:
    dashboard_lines = [line for line in stack.output().splitlines() if stack.url in line]
    assert dashboard_lines, f"adpulse up did not print {stack.url}:\n{stack.output()}"


def test_dashboard_in_headless_chromium(stack: Stack) -> None:
    done = subprocess.run(
        [
            "node",
            "e2e/run.mjs",
            "--url",
            stack.url,
            "--api",
            stack.api_url,
            "--artifacts",
            str(ARTIFACTS),
        ],
        cwd=DASHBOARD,
        capture_output=True,
        text=True,
        timeout=E2E_TIMEOUT_S,
        check=False,
    )
    report = done.stdout + done.stderr
    (ARTIFACTS / "e2e.log").write_text(report)
    assert done.returncode == 0, f"{report}\nadpulse up said:\n{_tail(stack.output())}"
    for view in ("overview-laptop", "overview-phone", "campaign-laptop", "empty-range"):
        assert (ARTIFACTS / f"{view}.png").stat().st_size > 10_000, f"no screenshot of {view}"


def test_sigkill_of_up_takes_the_dashboard_and_broker_with_it(stack: Stack) -> None:
    """Last in this module: it ends the stack. No handler runs on SIGKILL, so what stops the
    children is the parent-death signal each was started with."""
    children = descendants(stack.pid)
    commands = " ".join(Path(f"/proc/{pid}/cmdline").read_text() for pid in children)
    assert "next" in commands and "tansu" in commands, commands
    os.kill(stack.pid, signal.SIGKILL)
    # `up` itself holds the API and metrics ports until the last of its threads has exited.
    left = wait_gone(children | {stack.pid}, timeout=15)
    assert not left, f"still running after adpulse up was killed: {sorted(left)}"
    from adpulse.local.ports import holder, is_taken

    # Every thread of every process is gone (a zombie leader is not enough), so every
    # listener is closed: no waiting here.
    taken = [p for p in stack.ports if is_taken(p)]
    assert not taken, [f"{p}: {holder(p)}" for p in taken]
