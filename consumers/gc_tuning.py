"""Garbage-collector settings for a process that runs the ingest consumer.

A batch holds up to `batch_max_rows` decoded events, each a tuple the collector tracks. With
CPython's default thresholds (a young collection every 700 allocations, each older one
walking every tracked object) the collector took a quarter of the consumer's CPU: 148k
events/s became 198k with these settings (`python -m bench ingest`). Events hold no reference
cycles, so collecting rarely frees nothing later than it would have been freed anyway.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 100_000
OLDER_THRESHOLDS = (50, 1_000)


def tune_for_ingest() -> None:
    """Collect rarely, and never re-scan what was alive at start-up (modules, settings)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
