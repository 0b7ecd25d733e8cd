"""Which cache key answered each exact request target: what the fast path (`api.fast_path`)
reads and `ApiContext.answer` writes, in a module of its own so neither imports the other."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

# The target of the request being handled, for `ApiContext.answer` to remember.
request_target: ContextVar[bytes | None] = ContextVar("adpulse_request_target", default=None)


@dataclass(frozen=True, slots=True)
class Remembered:
    key: str
    endpoint: str
    media_type: str
    headers: tuple[tuple[bytes, bytes], ...]


class AnswerTargets:
    """Request target -> the cache key that answers it, for at most `max_entries` targets."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max = max_entries
        self._answers: dict[bytes, Remembered] = {}

    def remember(self, remembered: Remembered) -> None:
        """Called by `ApiContext.answer` once it has an answer for the current request."""
        target = request_target.get()
        if target is None:
            return
        if len(self._answers) >= self._max:
            self._answers.clear()  # a flood of distinct questions is not worth an LRU
        self._answers[target] = remembered

    def get(self, target: bytes) -> Remembered | None:
        return self._answers.get(target)
