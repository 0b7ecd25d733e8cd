"""Prometheus metrics of one API process, in its own registry (tests build several apps)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LATENCY = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10)


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Histogram(
            "adpulse_api_request_seconds",
            "HTTP request latency by route template and status",
            ["route", "method", "status"],
            buckets=_LATENCY,
            registry=r,
        )
        self.cache = Counter(
            "adpulse_api_cache_requests",
            "Answers by cache result",
            ["endpoint", "result"],
            registry=r,
        )
        self.cache_errors = Counter(
            "adpulse_api_cache_errors",
            "Cache operations that failed (answered from ClickHouse instead)",
            ["operation"],
            registry=r,
        )
        self.cache_bypassed = Counter(
            "adpulse_api_cache_bypassed",
            "Cache operations skipped while Redis is marked down",
            registry=r,
        )
        self.queries = Histogram(
            "adpulse_api_clickhouse_seconds",
            "ClickHouse query latency by endpoint",
            ["endpoint"],
            buckets=_LATENCY,
            registry=r,
        )
        self.query_failures = Counter(
            "adpulse_api_clickhouse_failures",
            "ClickHouse queries that failed, by reason",
            ["reason"],
            registry=r,
        )
        self.hot_answers = Counter(
            "adpulse_api_hot_answers",
            "Answers computed from the rollups held in memory (memory) or read from ClickHouse "
            "because the range is outside them (clickhouse), by kind of question",
            ["kind", "source"],
            registry=r,
        )
        self.hot_block_reads = Counter(
            "adpulse_api_hot_block_reads",
            "Reads of rollup blocks into memory, by table (their latency: "
            'adpulse_api_clickhouse_seconds{endpoint="hot"})',
            ["table"],
            registry=r,
        )
        self.hot_bytes = Gauge(
            "adpulse_api_hot_bytes", "Memory held by the rollup blocks", registry=r
        )
        self.auth_failures = Counter(
            "adpulse_api_auth_failures", "Requests refused with 401", ["reason"], registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware timing each HTTP request under its route template (bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(template, scope["method"], str(status)).observe(
                time.perf_counter() - started
            )
