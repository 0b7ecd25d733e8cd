"""`python -m bench cost`: how long `adpulse cost report` and its `--help` take, each beside a
baseline measured in the same run, so the ratio means the same on any machine.

- the report (`cost report --stack S --format json`) against `stack check --no-checkov --json`
  on the same stack: both run the Pulumi program under mocks in a child process; the ratio is
  what pricing adds to collecting the inventory. Target: the report under 10 s.
- `adpulse cost report --help` against `python -c pass` (the interpreter alone) and
  `adpulse --help`. Target: under 0.5 s, the CLI's budget for help.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REPORT_TARGET_S = 10.0
HELP_TARGET_S = 0.5


def timed(argv: list[str], runs: int) -> list[float]:
    """Wall seconds of `runs` runs of argv (each must exit 0 or 1: stack check may find faults)."""
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
        out.append(time.perf_counter() - start)
        if done.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-400:]}")
    return out


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(samples), 3),
        "max_s": round(max(samples), 3),
        "runs": len(samples),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run(stack: str, runs: int, help_runs: int) -> dict[str, Any]:
    adpulse = [sys.executable, "-m", "cli"]
    report = timed([*adpulse, "cost", "report", "--stack", stack, "--format", "json"], runs)
    check = timed([*adpulse, "stack", "check", "--stack", stack, "--no-checkov", "--json"], runs)
    cost_help = timed([*adpulse, "cost", "report", "--help"], help_runs)
    top_help = timed([*adpulse, "--help"], help_runs)
    python = timed([sys.executable, "-c", "pass"], help_runs)
    r, c = statistics.median(report), statistics.median(check)
    h, p = statistics.median(cost_help), statistics.median(python)
    return {
        "benchmark": "cost",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpu": cpu_model(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "stack": stack,
        "report": summary(report),
        "baseline_stack_check": summary(check),
        "report_over_stack_check": round(r / c, 2),
        "report_target_s": REPORT_TARGET_S,
        "report_within_target": r < REPORT_TARGET_S,
        "cost_help": summary(cost_help),
        "adpulse_help": summary(top_help),
        "baseline_python": summary(python),
        "cost_help_over_python": round(h / p, 2),
        "help_target_s": HELP_TARGET_S,
        "help_within_target": h < HELP_TARGET_S,
    }


def print_report(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"cost benchmark, stack {result['stack']}, {m['cpu']} x{m['cpus']}")
    print(
        f"  cost report         median {result['report']['median_s']:.2f} s "
        f"(target < {REPORT_TARGET_S:g} s)"
    )
    print(
        f"  stack check (base)  median {result['baseline_stack_check']['median_s']:.2f} s; "
        f"report / base = {result['report_over_stack_check']:.2f}x"
    )
    print(
        f"  cost report --help  median {result['cost_help']['median_s']:.3f} s "
        f"(target < {HELP_TARGET_S:g} s); adpulse --help {result['adpulse_help']['median_s']:.3f}"
        f" s; python -c pass {result['baseline_python']['median_s']:.3f} s; "
        f"help / python = {result['cost_help_over_python']:.2f}x"
    )


def main(stack: str, runs: int, help_runs: int, out: Path | None) -> None:
    result = run(stack, runs, help_runs)
    print_report(result)
    target = out or ROOT / "bench" / "results" / f"cost-{result['date']}.json"
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {target}")
