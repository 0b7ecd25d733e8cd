"""Prometheus metrics of one consumer, in its own registry (tests run several per process), and
the HTTP server that exposes them at /metrics with the consumer's liveness at /healthz."""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

# The loop calls consume() with a 0.1 s timeout, so an idle loop comes round ten times a second.
# What keeps it away longer is work: one turn writes every due batch in turn (up to one per
# partition, each up to batch_max_rows, each insert followed by a synchronous commit), and a
# rebalance flushes within REVOKE_FLUSH_BUDGET_S (10 s, consumers/consumer.py). 30 s is three
# such budgets, past what a healthy ClickHouse takes, and well under the 300 s after which
# librdkafka drops a member that stopped polling (max.poll.interval.ms) and the native client
# gives up on a silent server (send_receive_timeout): a hung insert shows here minutes earlier.
LIVENESS_WINDOW_S = 30.0

MaxLag = Callable[[], int | None]


class Liveness:
    """When the poll loop last came round and a write was last acknowledged (monotonic s).

    Read from the HTTP server's threads while the loop writes: each is one float assignment.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.polled_at: float | None = None
        self.flushed_at: float | None = None

    def polled(self) -> None:
        self.polled_at = self.clock()

    def flushed(self) -> None:
        self.flushed_at = self.clock()


def judge_liveness(
    now: float,
    polled_at: float | None,
    flushed_at: float | None,
    max_lag: int | None,
    window_s: float = LIVENESS_WINDOW_S,
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of /healthz: 200 when the poll loop ran within `window_s`.

    Only the loop decides: a ClickHouse outage pauses partitions while the loop keeps polling
    and retrying (live, and a restart would not help), so the flush age and the lag are
    reported for the deploy's own judgement, never judged here.
    """
    body: dict[str, Any] = {
        "status": "ok",
        "seconds_since_poll": None if polled_at is None else round(now - polled_at, 3),
        "seconds_since_flush": None if flushed_at is None else round(now - flushed_at, 3),
        "max_lag": max_lag,
    }
    if polled_at is None:
        body["status"] = "starting"
        body["reason"] = "the poll loop has not run yet: the consumer is starting"
        return 503, body
    if now - polled_at > window_s:
        body["status"] = "stuck"
        body["reason"] = (
            f"the poll loop last ran {now - polled_at:.1f} s ago (more than {window_s:g} s): "
            "it is blocked, most likely on a ClickHouse insert or a Kafka commit; see the "
            "consumer's log, and restart it if it stays so"
        )
        return 503, body
    return 200, body


class _LoopGauge(Gauge):
    """A gauge the poll loop sets on every turn: each set is also the loop's heartbeat."""

    def __init__(self, *args: Any, beat: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._beat = beat

    def set(self, value: float) -> None:
        super().set(value)
        self._beat()


class _WrittenCounter(Counter):
    """A counter the consumer adds to after every acknowledged write (0 rows included)."""

    def __init__(self, *args: Any, beat: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._beat = beat

    def inc(self, amount: float = 1, exemplar: dict[str, str] | None = None) -> None:
        super().inc(amount, exemplar)
        self._beat()


class ConsumerMetrics:
    """The consumer's metrics, and its liveness taken from two of them: IngestConsumer sets
    `buffered_rows` once per turn of its poll loop (`_update_gauges`) and adds to `rows` after
    every write ClickHouse acknowledged (`_written`), so those updates are the heartbeats."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.liveness = Liveness()
        r = self.registry
        self.lag = Gauge(
            "adpulse_consumer_lag", "Messages behind the partition end", ["partition"], registry=r
        )
        self.rows: Counter = _WrittenCounter(
            "adpulse_rows_written",
            "Events written to ClickHouse",
            registry=r,
            beat=self.liveness.flushed,
        )
        self.rows_per_second = Gauge(
            "adpulse_rows_per_second", "Events written per second over the last 10 s", registry=r
        )
        self.batch_rows = Histogram(
            "adpulse_batch_rows",
            "Events per inserted batch",
            buckets=(10, 100, 1_000, 10_000, 50_000, 100_000, 200_000, 500_000),
            registry=r,
        )
        self.insert_seconds = Histogram(
            "adpulse_insert_seconds",
            "ClickHouse insert latency",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.dead_letters = Counter(
            "adpulse_dead_letters", "Messages sent to the dead-letter topic", ["reason"], registry=r
        )
        self.duplicates = Counter(
            "adpulse_duplicates_dropped", "Events dropped as repeated event_id", registry=r
        )
        self.insert_failures = Counter(
            "adpulse_insert_failures", "Failed batch inserts (retried)", registry=r
        )
        self.freshness = Gauge(
            "adpulse_freshness_seconds",
            "Now minus the newest event_time written to ClickHouse",
            registry=r,
        )
        self.buffered_rows: Gauge = _LoopGauge(
            "adpulse_buffered_rows",
            "Events held in memory awaiting insert",
            registry=r,
            beat=self.liveness.polled,
        )
        self.paused = Gauge(
            "adpulse_paused", "1 while partitions are paused for ClickHouse", registry=r
        )

    def counters_only(self) -> ConsumerMetrics:
        """Metrics that add to this object's counters and histograms but keep their gauges
        apart: for a consumer draining its last messages while another is the current one."""
        private = ConsumerMetrics()
        for name in ("rows", "batch_rows", "insert_seconds", "dead_letters", "duplicates"):
            setattr(private, name, getattr(self, name))
        private.insert_failures = self.insert_failures
        return private

    def health(
        self, max_lag: MaxLag | None = None, window_s: float = LIVENESS_WINDOW_S
    ) -> tuple[int, dict[str, Any]]:
        """/healthz now: (status, body) of `judge_liveness` for this object's liveness."""
        live = self.liveness
        lag = max_lag() if max_lag is not None else None
        return judge_liveness(live.clock(), live.polled_at, live.flushed_at, lag, window_s)

    def serve(
        self,
        port: int,
        addr: str = "127.0.0.1",
        *,
        max_lag: MaxLag | None = None,
        window_s: float = LIVENESS_WINDOW_S,
    ) -> WSGIServer:
        """Serve /healthz and /metrics (any other path) on addr:port from a daemon thread.

        `addr` is an IP address (IPv4 or IPv6); port 0 picks a free one (`server_port`).
        `max_lag` gives the largest partition lag for /healthz's body. Returns the server:
        `shutdown()` stops it, `server_close()` releases the port. Raises OSError when the
        address cannot be bound.
        """
        metrics_app = make_wsgi_app(self.registry)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("PATH_INFO") != "/healthz":
                return metrics_app(environ, start_response)  # type: ignore[no-any-return]
            status, body = self.health(max_lag, window_s)
            data = json.dumps(body).encode()
            start_response(
                "200 OK" if status == 200 else "503 Service Unavailable",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(data))),
                    ("Cache-Control", "no-store"),
                ],
            )
            return [data]

        server_class = _Server6 if ipaddress.ip_address(addr).version == 6 else _Server
        server = make_server(addr, port, app, server_class, handler_class=_QuietHandler)
        threading.Thread(target=server.serve_forever, name="consumer-metrics", daemon=True).start()
        return server


class _Server(ThreadingMixIn, WSGIServer):
    """One thread per request: a slow scrape never holds up a health check."""

    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """No line per request on stderr: scrapes and health checks come every few seconds."""

    def log_message(self, format: str, *args: Any) -> None:
        pass
