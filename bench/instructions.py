"""Instructions per event of the consumer's hot path: a count, not a time, so it reads the same
on a busy machine and a quiet one (for the same CPU architecture and Python build).

The path (decode and validate, build the insert's columns; `bench.hot_path`) runs in a child
process over a fixed sample; a second child only loads the sample. The difference of their
counts divided by the sample's size is the figure: interpreter start-up, imports and loading
cancel out. Counted with `perf stat -e instructions:u` where the kernel allows it, otherwise
with valgrind's callgrind (counts the same user-space instructions, about 50x slower).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_EVENTS = 100_000
SAMPLE_SEED = 1
# A share of malformed messages (every kind of `adpulse.kafka.bad_messages`), so their slower
# road to the dead-letter topic is in the count as it is in a real stream.
BAD_FRACTION = 0.01
# The sample's clock and the decoder's "now": fixed, so the sample is the same bytes every run.
NOW_MS = 1_795_780_800_000  # 2026-11-27T12:00:00Z
# A stream of 10,000 events/s: ten events per millisecond, each stamped when it was served.
EVENTS_PER_MS = 10


class CounterUnavailable(RuntimeError):
    """Neither perf's instruction counter nor valgrind can be used on this machine."""


def sample(events: int = SAMPLE_EVENTS, seed: int = SAMPLE_SEED) -> list[bytes]:
    """`events` messages as `adpulse generate --bad-fraction 0.01` would send them, fixed clock."""
    from adpulse.events import encode
    from adpulse.kafka.bad_messages import BAD_KINDS
    from adpulse.traffic import TrafficModel, iter_events

    rng, bad_rng = random.Random(seed), random.Random(seed + 1)
    start = NOW_MS - 10 * 60_000
    stream = iter_events(TrafficModel(), rng, lambda: start, 1000)
    out: list[bytes] = []
    previous = None
    for i in range(events):
        event = next(stream)._replace(event_time_ms=start + i // EVENTS_PER_MS)
        if bad_rng.random() < BAD_FRACTION:
            kind = bad_rng.choice(BAD_KINDS)
            source = previous if kind.name == "duplicate_event_id" and previous else event
            out.append(kind.make(source, bad_rng))
        else:
            out.append(encode(event))
            previous = event
    return out


def _perf_works() -> bool:
    if shutil.which("perf") is None:
        return False
    probe = subprocess.run(
        ["perf", "stat", "-x,", "-e", "instructions:u", "true"], capture_output=True, text=True
    )
    return probe.returncode == 0 and _perf_count(probe.stderr) is not None


def _perf_count(stderr: str) -> int | None:
    for line in stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("instructions"):
            return int(fields[0]) if fields[0].isdigit() else None
    return None


def counter() -> str:
    """`perf` if the kernel lets this process count instructions, else `callgrind`."""
    if _perf_works():
        return "perf"
    if shutil.which("valgrind"):
        return "callgrind"
    raise CounterUnavailable(
        "cannot count instructions: perf's counter is not permitted here and valgrind is "
        "missing; install valgrind (scripts/system-deps.sh does) and run again"
    )


def count(tool: str, sample_file: Path, mode: str) -> int:
    """User-space instructions of one `bench.hot_path` child in `mode`."""
    child = [sys.executable, "-m", "bench.hot_path", str(sample_file), str(NOW_MS), mode]
    # Fixed string hashing: set and dict layouts, and with them the count, repeat exactly.
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT)}
    if tool == "perf":
        command = ["perf", "stat", "-x,", "-e", "instructions:u", "--", *child]
    else:
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *child]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"bench.hot_path {mode} failed under {tool}: {done.stderr[-2000:]}")
    if tool == "perf":
        found = _perf_count(done.stderr)
    else:
        match = re.search(r"Collected : (\d+)", done.stderr)
        found = int(match.group(1)) if match else None
    if found is None:
        raise RuntimeError(f"no instruction count in the output of {tool}: {done.stderr[-2000:]}")
    return found


def measure(events: int = SAMPLE_EVENTS, *, reference: bool = True) -> dict[str, Any]:
    """Instructions per event of the consumer's path, and of the reference decoder's."""
    import msgspec

    tool = counter()
    values = sample(events)
    with tempfile.TemporaryDirectory(prefix="adpulse-instructions-") as scratch:
        sample_file = Path(scratch) / "sample.msgpack"
        sample_file.write_bytes(msgspec.msgpack.encode(values))
        base = count(tool, sample_file, "load")
        consumer = count(tool, sample_file, "consumer")
        ref = count(tool, sample_file, "reference") if reference else None
    per_event = (consumer - base) / events
    report: dict[str, Any] = {
        "counter": "perf stat -e instructions:u" if tool == "perf" else "valgrind callgrind (Ir)",
        "sample": {
            "events": events,
            "seed": SAMPLE_SEED,
            "bad_fraction": BAD_FRACTION,
            "events_per_ms": EVENTS_PER_MS,
            "bytes": sum(map(len, values)),
        },
        "python": sys.version.split()[0],
        "machine": os.uname().machine,
        "baseline_instructions": base,
        "consumer_instructions": consumer,
        "consumer_per_event": round(per_event),
    }
    if ref is not None:
        report["reference_instructions"] = ref
        report["reference_per_event"] = round((ref - base) / events)
        report["consumer_vs_reference"] = round(per_event / ((ref - base) / events), 3)
    return report


def render(report: dict[str, Any]) -> str:
    if "error" in report:
        return f"instructions: not counted: {report['error']}"
    s = report["sample"]
    line = (
        f"hot path (decode, validate, batch, columns): {report['consumer_per_event']:,} "
        f"instructions/event over {s['events']:,} events ({report['counter']})"
    )
    if "reference_per_event" in report:
        line += (
            f"; reference decoder {report['reference_per_event']:,}/event "
            f"({report['consumer_vs_reference']:.3f}x)"
        )
    return line
