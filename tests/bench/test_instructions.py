"""The instruction count of the consumer's hot path: a fixed sample, a path held equal to the
reference path, and a count that comes out of a real counter (perf or callgrind)."""

from __future__ import annotations

from adpulse.events import decode_python
from bench.hot_path import consumer_path, reference_path
from bench.instructions import NOW_MS, _perf_count, measure, sample


def test_the_sample_is_the_same_bytes_every_time_with_some_bad_messages() -> None:
    first = sample(3000)
    assert first == sample(3000)
    assert first != sample(3000, seed=2)
    rejected = sum(not hasattr(decode_python(raw, now_ms=NOW_MS), "event_id") for raw in first)
    assert 0 < rejected < 100


def test_the_consumer_path_builds_the_columns_the_reference_path_builds() -> None:
    values = sample(5000)
    assert consumer_path(values, NOW_MS) == reference_path(values, NOW_MS)


def test_perf_output_gives_a_count_or_none_when_the_counter_is_not_there() -> None:
    assert _perf_count("123456,,instructions:u,1000,100.00,,\n") == 123456
    assert _perf_count("<not supported>,,instructions:u,0,100.00,,\n") is None
    assert _perf_count("no counter here\n") is None


def test_a_small_sample_is_counted_per_event() -> None:
    """Under callgrind where perf's counter is not permitted (valgrind: scripts/system-deps.sh)."""
    report = measure(events=300, reference=False)
    assert report["consumer_instructions"] > report["baseline_instructions"] > 0
    assert report["consumer_per_event"] > 0
    assert report["sample"]["events"] == 300
    assert report["counter"] in ("perf stat -e instructions:u", "valgrind callgrind (Ir)")
