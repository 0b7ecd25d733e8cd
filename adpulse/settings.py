"""The one typed settings object. Only this module reads the environment.

Field names match the Pulumi stack outputs (see `stacks/__main__.py`), so a deployed service is
configured from `pulumi stack output --json` with the `ADPULSE_` prefix and no translation.
"""

from __future__ import annotations

import ipaddress
import math
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adpulse import names
from adpulse.errors import ConfigError

_PLACEHOLDER_SECRETS = {"changeme", "change-me", "password", "secret", "admin", "example"}
_MAX_KEY_ROTATION_GRACE_S = 24 * 3600


class Settings(BaseSettings):
    """Configuration for every adpulse process, read from `ADPULSE_*` variables or `.env`."""

    model_config = SettingsConfigDict(
        env_prefix="ADPULSE_", env_file=".env", extra="ignore", validate_default=True
    )

    clickhouse_url: str = Field(
        "chdb://.adpulse/chdb",
        description="chdb://PATH (embedded); clickhouse://u:p@h1:9000,h2:9000/db; clickhouses://",
    )
    topology: str = Field(
        "single", description="'single', 'cluster' (1 shard x 3 replicas) or a topology TOML file"
    )
    retention_days: int = Field(90, ge=1, le=3650, description="TTL of the raw events table")
    rollup_retention_days: int = Field(
        730, ge=1, le=3650, description="TTL of hourly/daily rollups"
    )
    live_retention_days: int = Field(2, ge=1, le=30, description="TTL of the per-minute rollup")

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL"] = Field(
        "PLAINTEXT", description="SASL_SSL for MSK with SASL/SCRAM (9096); SSL for TLS alone"
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] | None = Field(
        None, description="with SASL_SSL; MSK offers SCRAM-SHA-512"
    )
    kafka_sasl_username: str | None = None
    # From the environment (the stack's kafka_scram_secret_arn), never from a stack output.
    kafka_sasl_password: SecretStr | None = None
    events_topic: str = names.EVENTS_TOPIC
    dlq_topic: str = names.DLQ_TOPIC
    consumer_group: str = names.CONSUMER_GROUP
    topic_partitions: int = Field(6, ge=1, le=1000)
    topic_replication_factor: int = Field(1, ge=1, le=5)
    topic_retention_ms: int = Field(7 * 24 * 3600 * 1000, ge=60_000)
    dlq_retention_ms: int = Field(30 * 24 * 3600 * 1000, ge=60_000)

    batch_interval_s: float = Field(5.0, gt=0, le=300, description="flush at least this often")
    batch_max_rows: int = Field(200_000, ge=1)
    batch_max_bytes: int = Field(64 * 1024 * 1024, ge=1024)

    redis_url: str | None = None
    postgres_url: SecretStr | None = None

    clickhouse_admin_password: SecretStr | None = None
    clickhouse_ingest_password: SecretStr | None = None
    clickhouse_api_password: SecretStr | None = None

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    dashboard_port: int = Field(3000, ge=1, le=65535)
    state_dir: Path = Field(Path(".adpulse"), description="local mode: logs, builds, data")
    metrics_port: int = Field(9108, ge=0, le=65535)
    metrics_host: str = Field(
        "127.0.0.1",
        description="the address the consumer's /metrics and /healthz bind to; the stack's hosts "
        "bind every interface (0.0.0.0), which private subnets and security groups fence in",
    )
    # The stack turns these on (outputs of the same names); locally nothing leaves the machine.
    cloudwatch_metrics: bool = Field(
        False, description="the consumer publishes ConsumerLag and FreshnessSeconds to CloudWatch"
    )
    cloudwatch_interval_s: float = Field(
        60.0,
        ge=60,
        le=300,
        description="one PutMetricData per interval: at most once a minute, and often enough for "
        "the stack's alarms, which judge 5-minute periods",
    )
    stack_name: str = Field(
        "local", min_length=1, max_length=255, description="the `Stack` metric dimension"
    )
    aws_region: str | None = Field(None, description="unset: the AWS SDK's own lookup")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Testing only: SIGKILL the consumer at a named point (see consumers/faults.py).
    fault_crash_at: str | None = None
    fault_crash_after: int = Field(1, ge=1)

    # Query API (api/).
    cache_ttl_s: float = Field(60.0, gt=0, le=3600, description="TTL of cached historical panels")
    live_cache_ttl_s: float = Field(
        2.0, gt=0, le=5, description="TTL of cached live/freshness answers (5 s freshness promise)"
    )
    cache_prefix: str = Field(
        "adpulse:api", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_:.-]+$"
    )
    api_query_timeout_s: float = Field(
        10.0, gt=0, le=300, description="time limit of one API query; longer ones answer 504"
    )
    api_hot_hours: int = Field(
        72,
        ge=0,
        le=168,
        description="answer ranges within this many hours of now from every campaign's rollups "
        "held in the API's memory (api/hot/); 0 reads ClickHouse for every answer",
    )
    api_hot_mb: int = Field(256, ge=16, le=65536, description="memory for those rollups, MiB")
    api_key_cache_s: float = Field(
        5.0, ge=0, le=300, description="reuse a key check this long; a revoked key lasts as long"
    )
    # From the environment (the stack's dashboard-api-key secret), never from a stack output.
    dashboard_api_key: SecretStr | None = Field(
        None,
        description="the dashboard's API key: the API registers it at startup as key `dashboard` "
        "and retires the one it replaces after key_rotation_grace_s "
        "(adpulse.metadata.api_keys.register)",
    )
    key_rotation_grace_s: float = Field(
        3600.0,
        description="a dashboard key replaced by a rotated one still verifies this long, so the "
        "hosts a rolling deploy has not reached yet keep serving their dashboards; 0 revokes it "
        f"at once; at most {_MAX_KEY_ROTATION_GRACE_S}",
    )

    @field_validator("clickhouse_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("chdb://", "clickhouse://", "clickhouses://")):
            raise ValueError(
                f"unknown scheme in {value.split('://')[0]!r}: use chdb://PATH, "
                "clickhouse://user:pass@host:9000/db or clickhouses://... for TLS"
            )
        return value

    @field_validator("metrics_host")
    @classmethod
    def _an_address_to_bind(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IP address to bind: use 127.0.0.1 (this machine only), "
                "0.0.0.0 (every interface) or one of the host's own addresses"
            ) from None
        return value

    @field_validator("key_rotation_grace_s", mode="before")
    @classmethod
    def _grace_in_range(cls, value: object) -> object:
        # Checked before parsing so a word ("1h") gets the same message as a number out of range.
        try:
            seconds = float(value) if isinstance(value, int | float | str) else math.nan
        except ValueError:
            seconds = math.nan
        if not 0 <= seconds <= _MAX_KEY_ROTATION_GRACE_S:
            raise ValueError(
                f"{value!r} is not a number of seconds from 0 to {_MAX_KEY_ROTATION_GRACE_S}: "
                "how long a replaced dashboard key still verifies (default 3600, an hour, for "
                "a rolling deploy; 0 revokes it at once)"
            )
        return seconds

    @field_validator(
        "clickhouse_admin_password", "clickhouse_ingest_password", "clickhouse_api_password"
    )
    @classmethod
    def _no_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            secret = value.get_secret_value()
            if secret.lower() in _PLACEHOLDER_SECRETS or len(secret) < 12:
                raise ValueError("is a placeholder or shorter than 12 characters; generate one")
        return value

    @model_validator(mode="after")
    def _distinct_topics(self) -> Settings:
        if self.events_topic == self.dlq_topic:
            raise ValueError("events_topic and dlq_topic must differ")
        return self

    @model_validator(mode="after")
    def _sasl_with_its_protocol(self) -> Settings:
        # The password is checked where a Kafka client is built (adpulse.kafka.client_config):
        # processes that never dial Kafka, like the API, need not hold it.
        sasl = {
            "ADPULSE_KAFKA_SASL_MECHANISM": self.kafka_sasl_mechanism,
            "ADPULSE_KAFKA_SASL_USERNAME": self.kafka_sasl_username,
        }
        if self.kafka_security_protocol == "SASL_SSL":
            missing = [key for key, value in sasl.items() if not value]
            if missing:
                raise ValueError(
                    f"ADPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs {' and '.join(missing)} "
                    "(the stack outputs kafka_sasl_mechanism and kafka_sasl_username)"
                )
        elif any(sasl.values()) or self.kafka_sasl_password is not None:
            raise ValueError(
                "ADPULSE_KAFKA_SASL_* are set but ADPULSE_KAFKA_SECURITY_PROTOCOL is "
                f"{self.kafka_security_protocol}: set it to SASL_SSL, or unset them"
            )
        return self


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning pydantic's report into one ConfigError that names each key."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"ADPULSE_{'_'.join(str(p) for p in err['loc']).upper() or '?'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return load_settings()
