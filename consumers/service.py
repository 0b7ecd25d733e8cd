"""`adpulse consume`: wire settings, ClickHouse, metrics and signals to the consumer."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from adpulse.clickhouse.roles import connect_as
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
    server = metrics.serve(settings.metrics_port) if settings.metrics_port else None
    consumer = IngestConsumer(
        settings,
        client,
        metrics=metrics,
        stop_after_idle=stop_after_idle,
        crash_points=CrashPoints(settings.fault_crash_at, settings.fault_crash_after),
    )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: flushing and stopping", signum)
        consumer.stop()

    publisher = cloudwatch_publisher(settings, consumer.observe)
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        if server is not None:
            log.info("metrics on http://127.0.0.1:%d/metrics", settings.metrics_port)
        return consumer.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if server is not None:
            server.shutdown()
        if publisher is not None:
            publisher.stop()
        client.close()
