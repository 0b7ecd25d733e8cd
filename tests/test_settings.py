"""Settings and connection URLs: defaults work, bad values name the key."""

from __future__ import annotations

import pytest

from adpulse.clickhouse.url import EmbeddedTarget, NativeTarget, parse_clickhouse_url
from adpulse.errors import ConfigError
from adpulse.settings import load_settings


def test_defaults_run_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("ADPULSE_CLICKHOUSE_URL", "ADPULSE_BATCH_INTERVAL_S"):
        monkeypatch.delenv(key, raising=False)
    settings = load_settings()
    assert settings.clickhouse_url == "chdb://.adpulse/chdb"
    assert settings.batch_interval_s == 5.0
    assert settings.events_topic == "ad-events"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADPULSE_BATCH_INTERVAL_S", "1")
    monkeypatch.setenv("ADPULSE_EVENTS_TOPIC", "t1")
    settings = load_settings()
    assert (settings.batch_interval_s, settings.events_topic) == (1.0, "t1")


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("ADPULSE_BATCH_INTERVAL_S", "-1", "ADPULSE_BATCH_INTERVAL_S"),
        ("ADPULSE_CLICKHOUSE_URL", "mysql://x", "ADPULSE_CLICKHOUSE_URL"),
        ("ADPULSE_CLICKHOUSE_API_PASSWORD", "changeme", "ADPULSE_CLICKHOUSE_API_PASSWORD"),
        ("ADPULSE_API_PORT", "http", "ADPULSE_API_PORT"),
        ("ADPULSE_METRICS_HOST", "localhost", "ADPULSE_METRICS_HOST: .*not an IP address to bind"),
        ("ADPULSE_METRICS_HOST", "10.0.0.0/16", "ADPULSE_METRICS_HOST"),
    ],
)
def test_bad_settings_name_the_key(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str, named: str
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=named):
        load_settings()


def test_key_rotation_grace_defaults_to_an_hour_as_api_keys_register_does() -> None:
    from datetime import timedelta

    from adpulse.metadata import api_keys

    grace = timedelta(seconds=load_settings().key_rotation_grace_s)
    assert grace == api_keys.ROTATION_GRACE == timedelta(hours=1)
    assert load_settings(key_rotation_grace_s="0").key_rotation_grace_s == 0


@pytest.mark.parametrize("value", ["-1", "86401", "1h", "", "nan", "inf"])
def test_a_bad_key_rotation_grace_names_the_key_and_the_range(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("ADPULSE_KEY_ROTATION_GRACE_S", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert (
        f"ADPULSE_KEY_ROTATION_GRACE_S: Value error, {value!r} is not a number of seconds "
        "from 0 to 86400: how long a replaced dashboard key still verifies"
    ) in str(info.value)


def test_same_topic_for_events_and_dead_letters_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ADPULSE_DLQ_TOPIC", "ad-events")
    with pytest.raises(ConfigError, match="dlq_topic must differ"):
        load_settings()


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADPULSE_CLICKHOUSE_API_PASSWORD", "s3cret-value-long")
    monkeypatch.setenv("ADPULSE_DASHBOARD_API_KEY", "adp_dashboard-key-value")
    shown = repr(load_settings())
    assert "s3cret-value-long" not in shown and "adp_dashboard-key-value" not in shown


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0", "10.0.3.7", "::", "::1"])
def test_metrics_bind_to_any_ip_address(address: str) -> None:
    assert load_settings(metrics_host=address).metrics_host == address


def test_embedded_url() -> None:
    assert parse_clickhouse_url("chdb://.adpulse/chdb") == EmbeddedTarget(".adpulse/chdb")
    assert parse_clickhouse_url("chdb:///abs/p?database=x") == EmbeddedTarget("/abs/p", "x")


def test_native_url_with_hosts_and_tls() -> None:
    target = parse_clickhouse_url("clickhouses://api:p%40ss@ch-1,ch-2:9441/ads")
    assert isinstance(target, NativeTarget)
    assert target.hosts == (("ch-1", 9440), ("ch-2", 9441))
    assert (target.user, target.password, target.database, target.secure) == (
        "api",
        "p@ss",
        "ads",
        True,
    )
    assert "p@ss" not in repr(target)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("clickhouse://u@h:port/db", "port 'port'"),
        ("clickhouse://u@h1,,h2/db", "empty host"),
        ("clickhouse://u@h/bad-db;drop", "not a plain identifier"),
        ("chdb://", "needs a data path"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_clickhouse_url(url)
