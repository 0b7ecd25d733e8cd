"""The consumer's /healthz: the pure judgement of its poll loop, then a real consumer (tansu,
chDB) that is live, is stalled by ClickHouse's own insert back-pressure and recovers, and a real
`python -m consumers` serving on every interface when metrics_host says so."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adpulse.clickhouse.client import ClickHouseClient
from adpulse.errors import ConfigError
from adpulse.settings import Settings, load_settings
from consumers.metrics import LIVENESS_WINDOW_S, ConsumerMetrics, judge_liveness
from tests.consumers.conftest import Running, count_rows, wait_for
from tests.support.clickhouse_server import free_port
from tests.support.events import random_events
from tests.support.kafka import isolated_settings, produce_events

ROOT = Path(__file__).resolve().parents[2]
HOUR_MS = 3_600_000


def get(url: str) -> tuple[int, dict[str, Any]]:
    """GET a /healthz: (status, its JSON body) for a 200 and a 503 alike."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status), json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


# --- the judgement ------------------------------------------------------------------------------


def test_live_while_the_loop_ran_within_the_window_with_what_is_known() -> None:
    status, body = judge_liveness(now=50.0, polled_at=49.9, flushed_at=42.0, max_lag=7)
    assert status == 200
    assert body == {
        "status": "ok",
        "seconds_since_poll": 0.1,
        "seconds_since_flush": 8.0,
        "max_lag": 7,
    }
    # Nothing written yet (no traffic) and no statistics yet: live, with nulls.
    status, body = judge_liveness(now=50.0, polled_at=50.0, flushed_at=None, max_lag=None)
    assert (status, body["seconds_since_flush"], body["max_lag"]) == (200, None, None)
    # The window's edge still counts as within it.
    assert judge_liveness(80.0, 50.0, None, None, window_s=30.0)[0] == 200


def test_not_live_before_the_loop_first_ran_or_once_it_stopped_coming_round() -> None:
    status, body = judge_liveness(now=3.0, polled_at=None, flushed_at=None, max_lag=None)
    assert (status, body["status"]) == (503, "starting")
    assert body["reason"] == "the poll loop has not run yet: the consumer is starting"
    status, body = judge_liveness(now=100.0, polled_at=60.0, flushed_at=59.0, max_lag=12)
    assert (status, body["status"], body["seconds_since_poll"]) == (503, "stuck", 40.0)
    assert body["reason"].startswith(
        f"the poll loop last ran 40.0 s ago (more than {LIVENESS_WINDOW_S:g} s)"
    )
    assert body["max_lag"] == 12, "what is known is reported either way"


def test_a_clickhouse_outage_alone_is_not_a_stuck_loop() -> None:
    """Paused for ClickHouse, the loop keeps polling: live, however old the last flush."""
    status, body = judge_liveness(now=900.0, polled_at=899.95, flushed_at=300.0, max_lag=10**6)
    assert (status, body["seconds_since_flush"]) == (200, 600.0)


# --- a real consumer ----------------------------------------------------------------------------


def test_healthz_follows_a_real_consumer_through_a_stalled_insert(
    schema: ClickHouseClient,
    settings_for: Callable[..., Settings],
    start_consumer: Callable[..., Running],
) -> None:
    """Live while it runs; blocked on a ClickHouse insert, 503 saying so; live again after.

    The stall is ClickHouse's own back-pressure: past `parts_to_delay_insert` parts in a
    partition, an insert waits up to `max_delay_to_insert` seconds before it is written.
    """
    settings = settings_for(topic_partitions=1, batch_interval_s=0.3)
    metrics = ConsumerMetrics()
    run: list[Running] = []
    server = metrics.serve(
        0, max_lag=lambda: run[0].consumer.observe().max_lag if run else None, window_s=1.0
    )
    url = f"http://127.0.0.1:{server.server_port}/healthz"
    now_ms = int(time.time() * 1000)
    first, second = (random_events(500, now_ms - HOUR_MS, HOUR_MS, seed=s) for s in (61, 62))
    events = f"{schema.database}.events"
    try:
        assert get(url)[1]["status"] == "starting"
        run.append(start_consumer(settings, schema, metrics=metrics))
        produce_events(settings, first)
        wait_for(lambda: count_rows(schema) == 500, what="the first events")
        wait_for(lambda: get(url)[1]["seconds_since_flush"] is not None, what="a flush")
        status, body = get(url)
        assert (status, body["status"]) == (200, "ok")

        # One part per partition, and any further part delays the insert that makes it.
        schema.command(f"OPTIMIZE TABLE {events} FINAL")
        schema.command(
            f"ALTER TABLE {events} MODIFY SETTING parts_to_delay_insert = 1, "
            "parts_to_throw_insert = 2, max_delay_to_insert = 10"
        )
        produce_events(settings, second)
        wait_for(lambda: get(url)[0] == 503, timeout=30, what="/healthz to see the stall")
        status, body = get(url)
        assert body["status"] == "stuck" and "blocked" in body["reason"], body
        assert count_rows(schema) == 500, "the stalled insert has not been written yet"

        schema.command(
            f"ALTER TABLE {events} RESET SETTING parts_to_delay_insert, parts_to_throw_insert, "
            "max_delay_to_insert"
        )
        wait_for(lambda: count_rows(schema) == 1_000, timeout=60, what="the stalled events")
        wait_for(lambda: get(url)[0] == 200, what="/healthz to recover")
        run[0].stop()
        assert run[0].result[0].rows == 1_000
    finally:
        server.shutdown()
        server.server_close()


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine that is not loopback (`hostname -I`), if it has one."""
    try:
        listed = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    found = [a for a in listed.stdout.split() if "." in a and not a.startswith("127.")]
    return found[0] if found else None


def test_the_default_binds_loopback_only() -> None:
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    metrics = ConsumerMetrics()
    metrics.buffered_rows.set(0)
    server = metrics.serve(0)  # metrics_host's default, 127.0.0.1
    try:
        assert get(f"http://127.0.0.1:{server.server_port}/healthz")[0] == 200
        with pytest.raises(urllib.error.URLError) as info:
            urllib.request.urlopen(f"http://{address}:{server.server_port}/healthz", timeout=5)
        assert isinstance(info.value.reason, ConnectionRefusedError)
    finally:
        server.shutdown()
        server.server_close()


def test_a_consumer_with_metrics_host_set_answers_on_a_non_loopback_address(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """`python -m consumers` as a host runs it, ADPULSE_METRICS_HOST=0.0.0.0: /healthz and
    /metrics answer on the machine's other address, and SIGTERM still stops it cleanly."""
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    settings = isolated_settings(kafka_bootstrap, f"chdb://{tmp_path / 'chdb'}")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ADPULSE_")},
        "ADPULSE_CLICKHOUSE_URL": settings.clickhouse_url,
        "ADPULSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "ADPULSE_EVENTS_TOPIC": settings.events_topic,
        "ADPULSE_DLQ_TOPIC": settings.dlq_topic,
        "ADPULSE_CONSUMER_GROUP": settings.consumer_group,
        "ADPULSE_METRICS_PORT": str(port),
        "ADPULSE_METRICS_HOST": "0.0.0.0",
    }
    migrate = [sys.executable, "-m", "cli", "schema", "migrate"]
    subprocess.run(migrate, env=env, cwd=ROOT, check=True, capture_output=True, timeout=180)
    proc = subprocess.Popen([sys.executable, "-m", "consumers"], env=env, cwd=ROOT)
    try:
        url = f"http://{address}:{port}"

        def live() -> bool:
            try:
                return get(f"{url}/healthz")[0] == 200
            except OSError:  # not listening yet
                return False

        wait_for(live, timeout=60, what=f"/healthz on {address}")
        status, body = get(f"{url}/healthz")
        assert (status, body["status"]) == (200, "ok")
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as answer:
            assert "adpulse_buffered_rows" in answer.read().decode()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_taken_port_is_one_line_naming_the_address_and_the_settings() -> None:
    from consumers.service import _serve

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load_settings(metrics_port=port)
        with pytest.raises(ConfigError) as info:
            _serve(settings, ConsumerMetrics(), consumer=None)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(f"cannot serve the consumer's metrics on 127.0.0.1:{port} (")
    assert "ADPULSE_METRICS_PORT / ADPULSE_METRICS_HOST" in message and "\n" not in message


def test_an_ipv6_address_is_served_too() -> None:
    metrics = ConsumerMetrics()
    metrics.buffered_rows.set(0)
    try:
        server = metrics.serve(0, "::1")
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    try:
        status, body = get(f"http://[::1]:{server.server_port}/healthz")
        assert (status, body["status"]) == (200, "ok")
    finally:
        server.shutdown()
        server.server_close()
