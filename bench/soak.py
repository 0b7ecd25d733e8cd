"""`adpulse up` left running: does every process stay in bounded memory?

Runs `adpulse up --no-dashboard` at a given rate for a given time on its own state directory
and ports, samples the resident memory (RSS) of `up`, the broker and the generator every few
seconds, then stops it with SIGINT and checks that every event the generator sent is in
ClickHouse. Each process's figure is its memory at the end beside its own memory after the
warm-up (the baseline, measured in the same run): the ratio is the result, and the growth per
hour is fitted over the second half of the run.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.schema import NoSamples

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_EVERY_S = 5.0


@dataclass
class Series:
    """RSS samples of one role (MB), with when each was taken (s since the start)."""

    samples: list[tuple[float, float]] = field(default_factory=list)

    def at_or_after(self, t: float) -> float:
        for at, mb in self.samples:
            if at >= t:
                return mb
        raise NoSamples(f"no memory sample after {t:.0f} s")

    def slope_mb_per_hour(self, since: float) -> float:
        """Least-squares growth over the samples from `since` on."""
        points = [(t, mb) for t, mb in self.samples if t >= since]
        if len(points) < 2:
            raise NoSamples(f"fewer than 2 memory samples after {since:.0f} s")
        n = len(points)
        mean_t = sum(t for t, _ in points) / n
        mean_m = sum(m for _, m in points) / n
        var = sum((t - mean_t) ** 2 for t, _ in points)
        cov = sum((t - mean_t) * (m - mean_m) for t, m in points)
        return cov / var * 3600


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _roles(up_pid: int) -> dict[str, int]:
    """The pids of `up` and of its broker and generator children."""
    roles = {"up": up_pid}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) != up_pid:
            continue
        if "tansu" in cmdline:
            roles["broker"] = int(entry.name)
        elif " generate " in cmdline:
            roles["generator"] = int(entry.name)
    return roles


def run(rate: float, minutes: float, window_s: float, warmup_s: float) -> dict[str, Any]:
    duration = minutes * 60
    if duration <= 2 * warmup_s:
        raise NoSamples(
            f"a {duration:g} s run leaves no samples past the {warmup_s:g} s warm-up to fit "
            "growth on; run longer (--minutes) or warm up shorter (--warmup)"
        )
    tmp = Path(tempfile.mkdtemp(prefix="adpulse-soak-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADPULSE_")}
    env.update(
        ADPULSE_STATE_DIR=str(tmp / "state"),
        ADPULSE_CLICKHOUSE_URL=f"chdb://{tmp / 'chdb'}",
        ADPULSE_KAFKA_BOOTSTRAP=f"127.0.0.1:{_free_port()}",
        ADPULSE_METRICS_PORT=str(_free_port()),
        ADPULSE_API_PORT=str(_free_port()),
    )
    command = [
        sys.executable, "-m", "cli", "up", "--no-dashboard", "--rate", f"{rate:g}",
        "--broker-window", f"{window_s:g}",
    ]  # fmt: skip
    out = (tmp / "up.out").open("w")
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    series: dict[str, Series] = {}
    disk_after_warmup: float | None = None
    started = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < duration:
            if disk_after_warmup is None and elapsed >= warmup_s:
                disk_after_warmup = _disk_mb(tmp / "chdb")
            if proc.poll() is not None:
                raise RuntimeError(f"adpulse up exited early:\n{(tmp / 'up.out').read_text()}")
            for role, pid in _roles(proc.pid).items():
                mb = _rss_mb(pid)
                if mb is not None:
                    series.setdefault(role, Series()).samples.append((elapsed, mb))
            time.sleep(SAMPLE_EVERY_S)
        proc.send_signal(signal.SIGINT)
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.close()
    output = (tmp / "up.out").read_text()
    written = re.search(r"stopped: ([\d,]+) events written", output)
    sent = re.findall(r"sent ([\d,]+) messages", (tmp / "state/logs/generator.log").read_text())
    if not written or not sent:
        raise NoSamples(f"adpulse up or its generator did not report a count:\n{output}")
    events_sent = int(sent[-1].replace(",", ""))
    disk_end = _disk_mb(tmp / "chdb")
    processes = {}
    for role, s in sorted(series.items()):
        start, end = s.at_or_after(warmup_s), s.samples[-1][1]
        processes[role] = {
            "rss_after_warmup_mb": round(start, 1),
            "rss_end_mb": round(end, 1),
            "rss_max_mb": round(max(mb for _, mb in s.samples), 1),
            "end_over_warmup": round(end / start, 3),
            "growth_mb_per_hour_second_half": round(s.slope_mb_per_hour(duration / 2), 1),
        }
    return {
        "machine": f"{os.cpu_count()} cores",
        "command": " ".join(command[2:]),
        "rate": rate,
        "minutes": minutes,
        "broker_window_s": window_s,
        "warmup_s": warmup_s,
        "events_sent": events_sent,
        "events_written": int(written.group(1).replace(",", "")),
        "achieved_rate": round(events_sent / duration),
        "every_event_written": int(written.group(1).replace(",", "")) == events_sent,
        "processes": processes,
        "chdb_disk_mb_after_warmup": round(disk_after_warmup or 0, 1),
        "chdb_disk_mb_end": round(disk_end, 1),
        # Everything on disk (events, rollups, parts not yet merged) over the events sent.
        "chdb_disk_bytes_per_event": round(disk_end * 2**20 / max(events_sent, 1), 1),
        "state_dir": str(tmp),
    }


def render(report: dict[str, Any]) -> str:
    lines = [
        f"soak: {report['command']} for {report['minutes']:g} min: "
        f"{report['events_sent']:,} events sent ({report['achieved_rate']:,}/s), "
        f"{report['events_written']:,} written"
        + ("" if report["every_event_written"] else "  << EVENTS MISSING"),
    ]
    for role, p in report["processes"].items():
        lines.append(
            f"  {role:<9} RSS {p['rss_after_warmup_mb']:>7,.0f} MB after warm-up -> "
            f"{p['rss_end_mb']:>7,.0f} MB at the end ({p['end_over_warmup']:.2f}x), "
            f"max {p['rss_max_mb']:,.0f} MB, "
            f"{p['growth_mb_per_hour_second_half']:+,.0f} MB/h over the second half"
        )
    lines.append(
        f"  chDB on disk {report['chdb_disk_mb_after_warmup']:,.0f} MB after warm-up -> "
        f"{report['chdb_disk_mb_end']:,.0f} MB at the end, "
        f"{report['chdb_disk_bytes_per_event']} bytes per event"
    )
    return "\n".join(lines)
