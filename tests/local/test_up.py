"""`adpulse up` as a person runs it: starts everything, shows data moving, stops on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.chdb_probe import probe
from tests.support.clickhouse_server import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_up_runs_the_pipeline_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
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
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "up", "--rate", "500", "--no-dashboard"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # like a terminal: the signal goes to `up` alone
    )
    lines: list[str] = []
    written = 0
    try:
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"written ([\d,]+) events", line)
            if match and int(match.group(1).replace(",", "")) > 0:
                written = int(match.group(1).replace(",", ""))
                break
        assert written > 0, "".join(lines)
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
    # The final count covers what the generator sent before it stopped, flushed on Ctrl-C.
    rows = probe(f"{tmp_path}/chdb").rows
    assert rows == int(final.group(1).replace(",", "")) >= written
    # No broker or generator left behind.
    leftovers = subprocess.run(
        ["pgrep", "-f", env["ADPULSE_KAFKA_BOOTSTRAP"]], capture_output=True, text=True
    ).stdout
    assert leftovers.strip() == ""
