"""librdkafka settings every adpulse Kafka client shares: where, and how securely."""

from __future__ import annotations

from typing import Any

from adpulse.settings import Settings


def kafka_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Bootstrap and security settings, plus the caller's own. MSK listens on TLS (9094)."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": settings.kafka_security_protocol,
        # A closed connection is routine (idle brokers, restarts); errors are still reported.
        "log.connection.close": False,
        **extra,
    }
