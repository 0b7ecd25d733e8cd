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


def test_a_figure_without_samples_is_an_error_with_its_reason_never_zeros(tmp_path: Path) -> None:
    # 3 s of traffic all falls in the 10 s warm-up that freshness skips: nothing to measure.
    out = bench(
        "ingest", "--events", "1000", "--rate", "200", "--duration", "3",
        "--path", str(tmp_path / "chdb"), "--out", str(tmp_path / "report.json"),
    )  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert "no samples" in out.stderr and "warm-up" in out.stderr and "--duration" in out.stderr
    assert "P50" not in out.stdout
    assert not (tmp_path / "report.json").exists()


def test_percentile_of_nothing_raises() -> None:
    import pytest

    from bench.schema import NoSamples, percentile

    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    with pytest.raises(NoSamples):
        percentile([], 95)


def test_soak_refuses_a_run_too_short_to_fit_growth() -> None:
    out = bench("soak", "--minutes", "1", "--warmup", "40")
    assert out.returncode == 1
    assert "no samples" in out.stderr and "--minutes" in out.stderr
