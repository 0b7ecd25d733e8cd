"""The librdkafka config every client builds: PLAINTEXT to local tansu, SASL/SCRAM to MSK."""

from __future__ import annotations

from typing import Any

import pytest

from adpulse.errors import ConfigError
from adpulse.kafka.client_config import kafka_config
from adpulse.settings import Settings, load_settings

MSK = {
    "kafka_bootstrap": "b-1.msk.example:9096,b-2.msk.example:9096",
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_mechanism": "SCRAM-SHA-512",
    "kafka_sasl_username": "adpulse",
}
PASSWORD = "scram-Pw-7fQ2xL9vT4"


@pytest.fixture(autouse=True)
def _no_kafka_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (
        "BOOTSTRAP",
        "SECURITY_PROTOCOL",
        "SASL_MECHANISM",
        "SASL_USERNAME",
        "SASL_PASSWORD",
    ):
        monkeypatch.delenv(f"ADPULSE_KAFKA_{key}", raising=False)


def settings(**values: Any) -> Settings:
    return load_settings(_env_file=None, **values)


def test_local_default_is_plaintext_to_tansu_without_sasl() -> None:
    assert kafka_config(settings(), **{"group.id": "g"}) == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "PLAINTEXT",
        "log.connection.close": False,
        "group.id": "g",
    }


def test_msk_logs_in_with_scram_over_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADPULSE_KAFKA_SASL_PASSWORD", PASSWORD)
    config = kafka_config(settings(**MSK), **{"client.id": "c"})
    assert config == {
        "bootstrap.servers": MSK["kafka_bootstrap"],
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "adpulse",
        "sasl.password": PASSWORD,
        "log.connection.close": False,
        "client.id": "c",
    }


def test_librdkafka_accepts_the_built_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Key names and values as librdkafka knows them (it refuses unknown ones at construction)."""
    from confluent_kafka import Producer

    monkeypatch.setenv("ADPULSE_KAFKA_SASL_PASSWORD", PASSWORD)
    Producer(kafka_config(settings(**MSK)))


def test_sasl_without_a_password_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="ADPULSE_KAFKA_SASL_PASSWORD is not set"):
        kafka_config(settings(**MSK))


@pytest.mark.parametrize("missing", ["kafka_sasl_mechanism", "kafka_sasl_username"])
def test_sasl_without_mechanism_or_username_is_refused(missing: str) -> None:
    values = {k: v for k, v in MSK.items() if k != missing}
    with pytest.raises(ConfigError, match=f"SASL_SSL needs ADPULSE_{missing.upper()}"):
        settings(**values)


def test_sasl_values_without_sasl_protocol_are_refused() -> None:
    with pytest.raises(ConfigError, match="ADPULSE_KAFKA_SECURITY_PROTOCOL is PLAINTEXT"):
        settings(kafka_sasl_username="adpulse")


def test_unknown_protocol_names_the_key_and_the_allowed_values() -> None:
    with pytest.raises(ConfigError, match=r"ADPULSE_KAFKA_SECURITY_PROTOCOL.*SASL_SSL"):
        settings(kafka_security_protocol="SASL_PLAINTEXT")


def test_the_password_stays_out_of_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADPULSE_KAFKA_SASL_PASSWORD", PASSWORD)
    loaded = settings(**MSK)
    assert loaded.kafka_sasl_password is not None
    assert PASSWORD not in repr(loaded) and PASSWORD not in str(loaded.model_dump())
