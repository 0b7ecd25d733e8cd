"""`adpulse up` as a person runs it: starts everything, shows data moving, stops on Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.chdb_probe import probe
from tests.support.clickhouse_server import free_port
from tests.support.processes import descendants, wait_gone

ROOT = Path(__file__).resolve().parents[3]
PORTS = ("ADPULSE_METRICS_PORT", "ADPULSE_API_PORT")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADPULSE_")}
    env.update(
        ADPULSE_STATE_DIR=str(tmp_path / "state"),
        ADPULSE_CLICKHOUSE_URL=f"chdb://{tmp_path}/chdb",
        ADPULSE_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}",
        ADPULSE_METRICS_PORT=str(free_port()),
        ADPULSE_API_PORT=str(free_port()),
        ADPULSE_DASHBOARD_PORT=str(free_port()),
        ADPULSE_BATCH_INTERVAL_S="1",
    )
    return env


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "up", "--rate", "500", "--no-dashboard", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # like a terminal: the signal goes to `up` alone
    )


def _read_until_written(proc: subprocess.Popen[str], lines: list[str], at_least: int) -> int:
    """Read status lines until one reports at least `at_least` events written."""
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = re.search(r"written ([\d,]+) events", line)
        if match and int(match.group(1).replace(",", "")) >= at_least:
            return int(match.group(1).replace(",", ""))
    raise AssertionError("adpulse up wrote nothing in time:\n" + "".join(lines))


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _kafka_port(env: dict[str, str]) -> int:
    return int(env["ADPULSE_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1])


def test_up_runs_the_pipeline_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    env = _env(tmp_path)
    # A 3 s window: the events cross several topics, and old ones are deleted, within the test.
    proc = _start(env, "--broker-window", "3")
    lines: list[str] = []
    try:
        written = _read_until_written(proc, lines, at_least=1)
        # Past two windows, so at least one topic was committed to the end and deleted.
        written = _read_until_written(proc, lines, at_least=written + 1)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    output = "".join(lines) + rest
    assert proc.returncode == 0, output
    assert "Kafka       127.0.0.1:" in output
    final = re.search(r"stopped: ([\d,]+) events written this run", output)
    assert final, output
    # The final count covers what the generator sent before it stopped, flushed on Ctrl-C,
    # and every event it sent is in ClickHouse although its topics were deleted on the way.
    rows = probe(f"{tmp_path}/chdb").rows
    assert rows == int(final.group(1).replace(",", "")) >= written
    generator_log = (tmp_path / "state" / "logs" / "generator.log").read_text()
    sent = re.findall(r"sent ([\d,]+) messages \(0 malformed\)", generator_log)
    assert sent, generator_log
    assert rows == int(sent[-1].replace(",", ""))
    up_log = (tmp_path / "state" / "logs" / "adpulse.log").read_text()
    assert re.search(r"window 0: ad-events\.\S+\.0 committed to the end and deleted", up_log), (
        up_log
    )
    # No broker or generator left behind.
    leftovers = subprocess.run(
        ["pgrep", "-f", env["ADPULSE_KAFKA_BOOTSTRAP"]], capture_output=True, text=True
    ).stdout
    assert leftovers.strip() == ""


def test_sigkill_of_up_leaves_no_child_and_frees_every_port(tmp_path: Path) -> None:
    env = _env(tmp_path)
    proc = _start(env)
    lines: list[str] = []
    try:
        _read_until_written(proc, lines, at_least=1)
        children = descendants(proc.pid)
        assert len(children) >= 2, children  # the broker and the generator at least
        proc.kill()  # SIGKILL to `up` alone: no handler, no cleanup of its own
        proc.wait(10)
        left = wait_gone(children, timeout=10)
        assert not left, f"still running after adpulse up was killed: {sorted(left)}"
    finally:
        for pid in descendants(proc.pid) | {proc.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for port in [_kafka_port(env)] + [int(env[name]) for name in PORTS]:
        assert _port_free(port), f"port {port} is still held"
    # A second run on the same ports starts its own broker, with none of the old one's events.
    again = _start(env)
    try:
        _read_until_written(again, [], at_least=1)
    finally:
        again.send_signal(signal.SIGINT)
        again.communicate(timeout=60)
    assert again.returncode == 0


@pytest.mark.parametrize("which", ["ADPULSE_KAFKA_BOOTSTRAP", "ADPULSE_API_PORT"])
def test_a_taken_port_stops_up_with_one_line_naming_port_and_holder(
    tmp_path: Path, which: str
) -> None:
    env = _env(tmp_path)
    port = _kafka_port(env) if which == "ADPULSE_KAFKA_BOOTSTRAP" else int(env[which])
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        done = subprocess.run(
            [sys.executable, "-m", "cli", "up", "--no-dashboard"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1, done.stderr
    assert f"port {port}" in errors[0]
    assert f"pid {os.getpid()}" in errors[0]  # this test process holds it
    assert which.split(" ")[0] in errors[0]
    assert "Kafka " not in done.stdout  # nothing started, no stranger's broker reused
