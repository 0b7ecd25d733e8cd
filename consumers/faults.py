"""Crash points for the crash-window tests: SIGKILL this process at a named moment.

Off unless `ADPULSE_FAULT_CRASH_AT` names a point; production never sets it.
"""

from __future__ import annotations

import os
import signal

CRASH_POINTS = ("mid_batch", "before_insert", "after_insert", "after_commit")


class CrashPoints:
    def __init__(self, crash_at: str | None, after: int = 1) -> None:
        if crash_at is not None and crash_at not in CRASH_POINTS:
            raise ValueError(f"crash point {crash_at!r} is not one of {', '.join(CRASH_POINTS)}")
        self.crash_at = crash_at
        self.remaining = after

    def reached(self, point: str) -> None:
        if point == self.crash_at:
            self.remaining -= 1
            if self.remaining <= 0:
                os.kill(os.getpid(), signal.SIGKILL)
