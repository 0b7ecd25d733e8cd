"""The documented benchmark commands parse (running them is for `bench/README.md`, not CI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_every_benchmark_is_listed() -> None:
    out = bench("--help")
    assert out.returncode == 0
    assert all(name in out.stdout for name in ("schema", "ingest", "api"))


def test_api_benchmark_takes_its_own_options() -> None:
    out = bench("api", "--help")
    assert out.returncode == 0, out.stderr
    assert "--concurrency" in out.stdout and "--client" in out.stdout


def test_unknown_options_are_refused_with_their_name() -> None:
    out = bench("ingest", "--bogus")
    assert out.returncode == 2 and "--bogus" in out.stderr
