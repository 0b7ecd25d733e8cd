"""Process-tree facts read from /proc, for tests that kill a process and look for leftovers."""

from __future__ import annotations

import time
from pathlib import Path

PROC = Path("/proc")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a live process, None once it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def descendants(pid: int) -> set[int]:
    """Every process below `pid` now: children, their children, and so on."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[1], []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """True while any thread of `pid` still runs. A zombie whose threads are all gone does not
    count: its files, and so its sockets, are closed. A zombie *leader* does count while other
    threads still exit: Linux shows the leader as `Z` before the rest of a many-threaded
    process has torn down, and its listeners stay open until the last thread is gone."""
    try:
        threads = [entry.name for entry in (PROC / str(pid) / "task").iterdir()]
    except OSError:
        return False
    for tid in threads:
        try:
            text = (PROC / str(pid) / "task" / tid / "stat").read_text()
        except OSError:
            continue
        if text[text.rindex(")") + 2 :].split()[0] not in ("Z", "X"):
            return True
    return False


def wait_gone(pids: set[int], timeout: float) -> set[int]:
    """The pids still alive after waiting up to `timeout` s for all of them to die."""
    deadline = time.monotonic() + timeout
    while (left := {p for p in pids if alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left
