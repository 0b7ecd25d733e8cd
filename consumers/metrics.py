"""Prometheus metrics of one consumer, in its own registry (tests run several per process)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.lag = Gauge(
            "adpulse_consumer_lag", "Messages behind the partition end", ["partition"], registry=r
        )
        self.rows = Counter("adpulse_rows_written", "Events written to ClickHouse", registry=r)
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
        self.buffered_rows = Gauge(
            "adpulse_buffered_rows", "Events held in memory awaiting insert", registry=r
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

    def serve(self, port: int, addr: str = "127.0.0.1") -> Any:
        """Expose /metrics on addr:port; returns the server so callers can shut it down."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        return server
