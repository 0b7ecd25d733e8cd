"""The usage assumptions behind the usage-based lines: each with its default, unit and reason.

Every one is printed with the report and settable with `--set usage.KEY=VALUE`. Bytes per event
come from cost/measured.json, measured on the project's own schema (`python -m cost.measure`);
retentions default to the services' own settings (adpulse/settings.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from adpulse.errors import AdpulseError

MEASURED = Path(__file__).with_name("measured.json")
SEED_EVENTS_PER_DAY = 200_000_000


class UsageError(AdpulseError):
    """An unknown usage key or a value that is not a number; the message lists the keys."""


@dataclass(frozen=True)
class Usage:
    events_per_day: float = SEED_EVENTS_PER_DAY
    kafka_bytes_per_event: float = 0.0  # filled from measured.json
    clickhouse_bytes_per_event: float = 0.0
    rollup_bytes_per_event: float = 0.0
    raw_retention_days: float = 90
    rollup_retention_days: float = 730
    kafka_retention_hours: float = 168
    peak_to_average: float = 3.0
    cross_az_share: float = 2 / 3
    insert_bytes_per_event: float = 0.0  # defaults to kafka_bytes_per_event
    api_requests_per_second: float = 10.0
    api_response_bytes: float = 4000.0
    alb_new_connections_share: float = 0.05
    nat_gb_per_month: float = 30.0
    endpoint_gb_per_month: float = 30.0
    flow_log_gb_per_month: float = 20.0
    broker_log_gb_per_month: float = 5.0
    agent_metrics_per_node: float = 2.0
    redis_dataset_gb: float = 1.0
    backup_put_requests_per_day: float = 20_000.0
    disk_headroom: float = 0.8

    def as_rows(self) -> list[tuple[str, float, str]]:
        """(key, value, what it means and why this default) for every assumption."""
        return [(f.name, float(getattr(self, f.name)), WHY[f.name]) for f in fields(self)]


WHY: dict[str, str] = {
    "events_per_day": "ad events a day (the seed's 200M); --events-per-day sets it",
    "kafka_bytes_per_event": "bytes per Kafka message: encoded value + key + record overhead, "
    "measured (cost/measured.json)",
    "clickhouse_bytes_per_event": "compressed bytes on disk per event in the raw events table, "
    "after merges, measured (cost/measured.json)",
    "rollup_bytes_per_event": "compressed bytes on disk per event across the rollup tables, "
    "measured on one day (cost/measured.json); rollup rows are capped by key combinations, so "
    "more events a day need fewer bytes each: an upper bound",
    "raw_retention_days": "TTL of the raw events table (settings.retention_days)",
    "rollup_retention_days": "days the rollups are kept, weighted by each rollup's bytes (their "
    "TTLs are 2, 90 and 730 days; cost/measured.json)",
    "kafka_retention_hours": "topic retention (settings.topic_retention_ms)",
    "peak_to_average": "peak event rate over the daily average (sizes Kinesis shards)",
    "cross_az_share": "share of client traffic that crosses an AZ with one broker or replica "
    "per AZ and clients spread evenly (2/3 over 3 AZs)",
    "insert_bytes_per_event": "bytes per event the consumer sends ClickHouse (native protocol, "
    "LZ4 columns); 0 means as many as a Kafka message, an upper bound",
    "api_requests_per_second": "API requests through the ALB (about 12 dashboards open, each "
    "polling 8 panels every 10 s)",
    "api_response_bytes": "bytes per API response",
    "alb_new_connections_share": "share of requests that open a new connection (keep-alive)",
    "nat_gb_per_month": "GB through NAT when egress=nat: package updates, AWS APIs, agents",
    "endpoint_gb_per_month": "GB through interface endpoints when egress=endpoints (the same "
    "traffic)",
    "flow_log_gb_per_month": "VPC flow log GB delivered to CloudWatch Logs a month",
    "broker_log_gb_per_month": "MSK broker log GB delivered to CloudWatch Logs a month",
    "agent_metrics_per_node": "CloudWatch agent metrics per ClickHouse node (disk, memory)",
    "redis_dataset_gb": "Redis snapshot size (the 60 s answer cache is small)",
    "backup_put_requests_per_day": "S3 PUTs a backup makes (one per file of each part)",
    "disk_headroom": "share of a volume data may fill (merges need free space)",
}


def measured(path: Path = MEASURED) -> dict[str, Any]:
    """The committed measurement; an error says how to make it when it is missing."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except OSError:
        raise UsageError(
            f"{path} is missing: run `python -m cost.measure --out {path}` to measure bytes per "
            "event on this schema"
        ) from None
    return data


def defaults(measurement: Mapping[str, Any] | None = None) -> Usage:
    """The defaults, with bytes per event from the measurement and retentions from settings."""
    from adpulse.settings import Settings

    m = measured() if measurement is None else measurement
    s = Settings.model_fields
    return Usage(
        kafka_bytes_per_event=float(m["kafka_bytes_per_message"]),
        clickhouse_bytes_per_event=float(m["raw_bytes_per_event"]),
        rollup_bytes_per_event=float(m["rollup_bytes_per_event"]),
        raw_retention_days=float(s["retention_days"].default),
        rollup_retention_days=weighted_rollup_days(m),
        kafka_retention_hours=float(s["topic_retention_ms"].default) / 3_600_000,
    )


def weighted_rollup_days(measurement: Mapping[str, Any]) -> float:
    """The rollups' TTLs weighted by their bytes: the days one rollup byte is kept, on average."""
    tables = measurement["tables"]
    rollups = [tables[name] for name in measurement["rollup_tables"]]
    total = sum(float(t["bytes_on_disk"]) for t in rollups)
    return round(sum(float(t["bytes_on_disk"]) * float(t["ttl_days"]) for t in rollups) / total, 1)


def with_sets(usage: Usage, sets: Mapping[str, str]) -> Usage:
    """`usage` with `KEY=VALUE` pairs applied; unknown keys and non-numbers are errors."""
    known = {f.name for f in fields(usage)}
    changes: dict[str, float] = {}
    for key, text in sets.items():
        if key not in known:
            raise UsageError(f"unknown usage key {key!r}; the keys are: {', '.join(sorted(known))}")
        try:
            value = float(text.replace("_", ""))
        except ValueError:
            raise UsageError(f"usage.{key} must be a number, not {text!r}") from None
        if not math.isfinite(value) or value < 0:
            raise UsageError(f"usage.{key} must be a finite number >= 0, not {text!r}")
        changes[key] = value
    return replace(usage, **changes)


def checked_events_per_day(value: float) -> float:
    """`value` when it is a finite number >= 0 (0 prices an idle stack), else a UsageError."""
    if not math.isfinite(value) or value < 0:
        raise UsageError(
            f"--events-per-day must be a finite number >= 0 (0 prices the idle stack), "
            f"not {value:g}"
        )
    return value
