"""Consumer lag and freshness to CloudWatch, so the stack's alarms watch metrics that exist.

A daemon thread wakes once per `cloudwatch_interval_s` (60 s at least: CloudWatch's standard
resolution, one request a minute), reads the consumer's latest `Observation` and sends both
values in one PutMetricData. The poll loop never waits on CloudWatch. A failed send is logged and
dropped, never raised: ingest does not stop for monitoring, and the alarms see missing data.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adpulse import names
from adpulse.settings import Settings

log = logging.getLogger("adpulse.consumer.cloudwatch")


@dataclass(frozen=True)
class Observation:
    """What one consumer knows now; None where it does not know yet."""

    max_lag: int | None  # messages behind the partition end, the largest over its partitions
    newest_event_ms: int | None  # event_time of the newest event written to ClickHouse


def dimensions(settings: Settings) -> dict[str, str]:
    """The metric dimensions; the stack's alarms name exactly these (stacks/alarms.py)."""
    return {
        names.STACK_DIMENSION: settings.stack_name,
        names.GROUP_DIMENSION: settings.consumer_group,
    }


def metric_data(
    observation: Observation, now_s: float, dims: dict[str, str]
) -> list[dict[str, Any]]:
    """PutMetricData's MetricData for one observation; unknown values are left out."""
    common = {
        "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dims.items())],
        "Timestamp": datetime.fromtimestamp(now_s, UTC),
    }
    data: list[dict[str, Any]] = []
    if observation.max_lag is not None:
        data.append(
            {
                "MetricName": names.CONSUMER_LAG_METRIC,
                "Value": float(observation.max_lag),
                "Unit": "Count",
                **common,
            }
        )
    if observation.newest_event_ms is not None:
        # Events stamped slightly ahead of this host's clock are fresh, not negatively old.
        age = max(0.0, now_s - observation.newest_event_ms / 1000)
        data.append(
            {"MetricName": names.FRESHNESS_METRIC, "Value": age, "Unit": "Seconds", **common}
        )
    return data


class CloudWatchPublisher:
    """Publishes `observe()` every `interval` seconds from its own thread until `stop()`."""

    def __init__(
        self,
        settings: Settings,
        observe: Callable[[], Observation],
        *,
        client: Any | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.observe = observe
        self.interval = settings.cloudwatch_interval_s if interval is None else interval
        self.dimensions = dimensions(settings)
        self.client = client if client is not None else _client(settings)
        self.clock = clock
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cloudwatch", daemon=True)

    def publish_once(self) -> bool:
        """Send the current observation. True if CloudWatch accepted it; never raises for AWS."""
        from botocore.exceptions import BotoCoreError, ClientError

        data = metric_data(self.observe(), self.clock(), self.dimensions)
        if not data:
            return False
        try:
            self.client.put_metric_data(Namespace=names.METRICS_NAMESPACE, MetricData=data)
        except (BotoCoreError, ClientError) as exc:
            log.warning("CloudWatch PutMetricData failed, dropped: %s", str(exc)[:300])
            return False
        self.sent += 1
        return True

    def start(self) -> CloudWatchPublisher:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """End the thread (an in-flight request may take until the SDK's timeouts)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.publish_once()
            # A bug here must not end publishing for the life of the process: log it, go on.
            except Exception:
                log.exception("CloudWatch publishing failed")


def _client(settings: Settings) -> Any:
    import boto3
    from botocore.config import Config

    # Short timeouts and few retries: a late datapoint is worth less than the next one.
    config = Config(
        connect_timeout=3, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"}
    )
    return boto3.client("cloudwatch", region_name=settings.aws_region, config=config)


def cloudwatch_publisher(
    settings: Settings, observe: Callable[[], Observation]
) -> CloudWatchPublisher | None:
    """A started publisher when `cloudwatch_metrics` is on (the stack's hosts), else None.

    Also None, with an error logged, when the AWS SDK cannot be set up (no region, say): the
    consumer still ingests, and the stack's freshness alarm reports the missing data.
    """
    if not settings.cloudwatch_metrics:
        return None
    from botocore.exceptions import BotoCoreError

    try:
        return CloudWatchPublisher(settings, observe).start()
    except BotoCoreError as exc:
        log.error("CloudWatch metrics are on but cannot be published: %s", exc)
        return None
