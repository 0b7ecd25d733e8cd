"""librdkafka settings every adpulse Kafka client shares: where, and how securely."""

from __future__ import annotations

from typing import Any

from adpulse.errors import ConfigError
from adpulse.settings import Settings


def kafka_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Bootstrap and security settings, plus the caller's own.

    MSK admits clients on SASL/SCRAM over TLS (9096); local tansu on PLAINTEXT. The result holds
    the SASL password in clear, as librdkafka needs it: never log it. Raises ConfigError when
    SASL_SSL is set without ADPULSE_KAFKA_SASL_PASSWORD.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": settings.kafka_security_protocol,
        # A closed connection is routine (idle brokers, restarts); errors are still reported.
        "log.connection.close": False,
    }
    if settings.kafka_security_protocol == "SASL_SSL":
        if settings.kafka_sasl_password is None:
            raise ConfigError(
                "ADPULSE_KAFKA_SASL_PASSWORD is not set, and ADPULSE_KAFKA_SECURITY_PROTOCOL is "
                "SASL_SSL: set it to the `password` of the secret named by the stack output "
                "kafka_scram_secret_arn"
            )
        config |= {
            "sasl.mechanism": settings.kafka_sasl_mechanism,
            "sasl.username": settings.kafka_sasl_username,
            "sasl.password": settings.kafka_sasl_password.get_secret_value(),
        }
    return config | extra
