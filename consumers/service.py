"""`adpulse consume`: wire settings, ClickHouse, metrics and signals to the consumer."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from wsgiref.simple_server import WSGIServer

from adpulse.clickhouse.roles import connect_as
from adpulse.errors import ConfigError
from adpulse.settings import Settings
from consumers.cloudwatch import cloudwatch_publisher
from consumers.consumer import IngestConsumer, Summary
from consumers.faults import CrashPoints
from consumers.gc_tuning import tune_for_ingest
from consumers.metrics import ConsumerMetrics

log = logging.getLogger("adpulse.consumer")


def run_consumer(settings: Settings, *, stop_after_idle: float | None = None) -> Summary:
    """Consume until SIGTERM/SIGINT (or idle), then flush, commit and return."""
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    tune_for_ingest()
    client = connect_as(settings, "ingest")
    metrics = ConsumerMetrics()
    consumer = IngestConsumer(
        settings,
        client,
        metrics=metrics,
        stop_after_idle=stop_after_idle,
        crash_points=CrashPoints(settings.fault_crash_at, settings.fault_crash_after),
    )
    try:
        server = _serve(settings, metrics, consumer)
    except ConfigError:
        client.close()
        raise

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: flushing and stopping", signum)
        consumer.stop()

    publisher = cloudwatch_publisher(settings, consumer.observe)
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        if server is not None:
            where = _url_host(settings.metrics_host)
            log.info(
                "metrics and liveness on http://%s:%d/metrics and /healthz",
                where,
                server.server_port,
            )
        return consumer.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if server is not None:
            server.shutdown()
            server.server_close()
        if publisher is not None:
            publisher.stop()
        client.close()


def _serve(
    settings: Settings, metrics: ConsumerMetrics, consumer: IngestConsumer
) -> WSGIServer | None:
    """/metrics and /healthz on metrics_host:metrics_port; None when metrics_port is 0."""
    if not settings.metrics_port:
        return None
    try:
        return metrics.serve(
            settings.metrics_port,
            settings.metrics_host,
            max_lag=lambda: consumer.observe().max_lag,
        )
    except OSError as exc:
        where = f"{_url_host(settings.metrics_host)}:{settings.metrics_port}"
        raise ConfigError(
            f"cannot serve the consumer's metrics on {where} ({exc.strerror or exc}): stop what "
            "holds the port, or set ADPULSE_METRICS_PORT / ADPULSE_METRICS_HOST"
        ) from None


def _url_host(address: str) -> str:
    """An IP address as a URL's host: IPv6 in brackets."""
    return f"[{address}]" if ":" in address else address
