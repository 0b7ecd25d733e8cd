"""Where the consumer's CPU goes: process CPU seconds per phase of its main loop.

Read by `bench ingest` for its CPU split per event. A phase is charged the process's CPU (all
threads: librdkafka's, chDB's) from the end of the previous phase to its own end, so the
phases add up to the consumer's CPU over the run. A lap costs one `process_time()` call; the
loop takes a few per fetched chunk of up to 10,000 messages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

PHASES = ("fetch", "decode", "batch", "columns", "insert", "other")


@dataclass
class CpuPhases:
    """CPU seconds per phase: fetch (consume), decode (decode and validate), batch (offsets,
    duplicates, dead letters), columns (the insert's columns), insert (ClickHouse's write with
    its views and projections), other (recording, committing, dead-letter delivery, gauges)."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    _mark: float = field(default_factory=time.process_time)

    def lap(self, phase: str) -> None:
        """Charge the CPU since the previous lap to `phase`."""
        now = time.process_time()
        self.seconds[phase] += now - self._mark
        self._mark = now
