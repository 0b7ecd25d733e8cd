"""The process facts the SIGKILL tests rely on, checked against a real many-threaded exit."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from adpulse.local.ports import is_taken
from tests.support.clickhouse_server import free_port
from tests.support.processes import alive, wait_gone

# The main thread exits first (pthread_exit) while a second thread keeps the process, and its
# listener, alive: Linux then shows the leader as a zombie although the process still runs.
LEADER_EXITS_FIRST = """
import ctypes, socket, sys, threading
sock = socket.socket()
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen()
threading.Thread(target=sys.stdin.readline).start()
print("listening", flush=True)
ctypes.CDLL(None).pthread_exit(None)
"""


def _leader_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_zombie_leader_with_a_live_thread_is_alive_and_still_listens() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", LEADER_EXITS_FIRST, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "listening"
        deadline = time.monotonic() + 10
        while _leader_state(proc.pid) != "Z":
            assert time.monotonic() < deadline, "the main thread did not exit"
            time.sleep(0.01)
        assert alive(proc.pid)
        assert is_taken(port)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        # Not reaped yet: gone by its threads alone, and the listener closed with the last one.
        assert wait_gone({proc.pid}, timeout=10) == set()
        assert not is_taken(port)
    finally:
        proc.kill()
        proc.wait(10)


def test_free_ports_are_below_the_ephemeral_range() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(20)}
    assert all(port < low for port in ports), (low, sorted(ports))
    assert not any(is_taken(port) for port in ports)
