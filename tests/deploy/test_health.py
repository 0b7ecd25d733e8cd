"""deploy.health over real HTTP: the real API app under uvicorn (its /readyz and /healthz), a
scripted local server for answers that change over time, and the consumer's real /metrics and
/healthz."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from adpulse.clickhouse.client import ClickHouseClient, Params, QuerySettings, Row, UnavailableError
from adpulse.metadata.store import MetadataStore, create_store_engine
from adpulse.settings import load_settings
from api.server import build_server
from consumers.metrics import ConsumerMetrics
from deploy.health import (
    Check,
    HealthError,
    consumer_alive,
    consumer_checks,
    consumer_lag_within,
    consumer_lags,
    get,
    wait_healthy,
)
from tests.api.support import RecordingClient, serving
from tests.support.clickhouse_server import free_port

Answer = tuple[int, bytes]


class FakeTime:
    """The deadline's clock: each `sleep` moves it on at once, so waits cost no real time."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def scripted() -> Iterator[Callable[[list[Answer]], str]]:
    """Serve a list of answers on 127.0.0.1, one per request, repeating the last; yields a
    function taking the list and returning the URL."""
    answers: list[Answer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = answers.pop(0) if len(answers) > 1 else answers[0]
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def script(given: list[Answer]) -> str:
        answers[:] = given
        return f"http://127.0.0.1:{server.server_port}/readyz"

    yield script
    server.shutdown()
    server.server_close()


class DownClient(RecordingClient):
    """ClickHouse unreachable, as after a release that points the API at a wrong host."""

    def query(
        self, sql: str, params: Params | None = None, settings: QuerySettings | None = None
    ) -> list[Row]:
        raise UnavailableError("ClickHouse at ch1:9000 unreachable: connection refused")


@pytest.fixture
def api(
    chdb_path: Path, chdb_db: ClickHouseClient, tmp_path: Path
) -> Iterator[Callable[[ClickHouseClient], str]]:
    """Start the real API app under uvicorn on a fresh embedded database, answering through
    the given client; returns its base URL."""
    store = MetadataStore(create_store_engine(f"sqlite:///{tmp_path}/metadata.sqlite3"))
    store.migrate()
    settings = load_settings(
        clickhouse_url=f"chdb://{chdb_path}?database={chdb_db.database}",
        redis_url=None,
        api_hot_hours=0,
        log_level="WARNING",
    )
    with ExitStack() as running:

        def start(client: ClickHouseClient) -> str:
            server = build_server(
                settings,
                "127.0.0.1",
                free_port(),
                auth_required=False,
                clickhouse_client=client,
                store=store,
            )
            return running.enter_context(serving(server))

        yield start
    store.close()


def test_real_api_is_healthy_at_once(
    api: Callable[[ClickHouseClient], str], chdb_db: ClickHouseClient, fake: FakeTime
) -> None:
    base = api(chdb_db)
    checks = [Check("adpulse-api /readyz", f"{base}/readyz"), Check("api live", f"{base}/healthz")]
    results = wait_healthy(checks, fake.now + 30, fake.clock, fake.sleep)
    assert [(r.check.name, r.ok, r.why, r.attempts) for r in results] == [
        ("adpulse-api /readyz", True, "ok", 1),
        ("api live", True, "ok", 1),
    ]
    assert fake.slept == []


def test_real_api_without_clickhouse_is_never_ready(
    api: Callable[[ClickHouseClient], str], chdb_db: ClickHouseClient, fake: FakeTime
) -> None:
    base = api(DownClient(chdb_db))
    checks = [Check("api live", f"{base}/healthz"), Check("adpulse-api", f"{base}/readyz")]
    with pytest.raises(HealthError) as caught:
        wait_healthy(checks, fake.now + 10, fake.clock, fake.sleep, interval_s=2)
    message = str(caught.value)
    assert message.startswith(f"not healthy in time: adpulse-api ({base}/readyz): HTTP 503: ")
    assert "ch1:9000 unreachable" in message  # the body says why
    assert "api live" not in message  # only the failing check is named
    assert message.endswith("[6 tries]")  # at 0, 2, 4, 6, 8 and 10 s
    assert [r.ok for r in caught.value.results] == [True, False]
    assert fake.slept == [2, 2, 2, 2, 2]


def test_healthy_after_failures(scripted: Callable[[list[Answer]], str], fake: FakeTime) -> None:
    url = scripted([(503, b"starting"), (502, b""), (503, b"starting"), (200, b"ok")])
    results = wait_healthy([Check("adpulse-api", url)], fake.now + 60, fake.clock, fake.sleep)
    assert (results[0].ok, results[0].attempts) == (True, 4)
    assert fake.slept == [1.0, 1.0, 1.0]


def test_never_healthy_names_url_and_last_status(
    scripted: Callable[[list[Answer]], str], fake: FakeTime
) -> None:
    url = scripted([(502, b"bad gateway"), (503, b'{"status": "down",\n "clickhouse": "x"}')])
    with pytest.raises(HealthError) as caught:
        wait_healthy([Check("adpulse-api", url)], fake.now + 2.5, fake.clock, fake.sleep)
    assert str(caught.value) == (
        f'not healthy in time: adpulse-api ({url}): HTTP 503: {{"status": "down", '
        '"clickhouse": "x"} [4 tries]'
    )
    assert fake.slept == [1.0, 1.0, 0.5]  # never sleeps past the deadline


def test_connection_refused_says_refused(fake: FakeTime) -> None:
    url = f"http://127.0.0.1:{free_port()}/healthz"
    with pytest.raises(HealthError) as caught:
        wait_healthy([Check("adpulse-dashboard", url)], fake.now, fake.clock, fake.sleep)
    assert str(caught.value) == (
        f"not healthy in time: adpulse-dashboard ({url}): connection refused (is the unit "
        "running and listening on that port?) [1 tries]"
    )


def test_a_silent_peer_is_a_timeout(fake: FakeTime) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as silent:
        # Listening, but nothing ever accepts or answers: the backlog holds the connection.
        url = f"http://127.0.0.1:{silent.server_port}/readyz"
        with pytest.raises(HealthError, match=r"no answer within 0.05 s \[1 tries\]$"):
            wait_healthy([Check("api", url, timeout_s=0.05)], fake.now, fake.clock, fake.sleep)


def test_consumer_lag_judged_from_its_metrics(fake: FakeTime) -> None:
    metrics = ConsumerMetrics()
    server = metrics.serve(0)
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    check = Check("adpulse-consumer", url, judge=consumer_lag_within(1000))
    try:
        # No statistics yet: the endpoint answering is liveness enough.
        assert wait_healthy([check], fake.now, fake.clock, fake.sleep)[0].ok
        assert consumer_lags(get(url, 2.0)[1].decode()) == []
        metrics.lag.labels("0").set(12)
        metrics.lag.labels("1").set(5000)
        # What `adpulse status` shows as the consumer's lag: the worst partition's, read this way.
        assert sorted(consumer_lags(get(url, 2.0)[1].decode())) == [12.0, 5000.0]
        with pytest.raises(HealthError, match="adpulse_consumer_lag is 5000 messages"):
            wait_healthy([check], fake.now, fake.clock, fake.sleep)
        metrics.lag.labels("1").set(40)
        assert wait_healthy([check], fake.now, fake.clock, fake.sleep)[0].ok
    finally:
        server.shutdown()
        server.server_close()


def test_not_prometheus_text_is_unhealthy(
    scripted: Callable[[list[Answer]], str], fake: FakeTime
) -> None:
    url = scripted([(200, b"<html>a web page</html>")])
    check = Check("adpulse-consumer", url, judge=consumer_lag_within(10))
    with pytest.raises(HealthError, match=r"not Prometheus text .*<html>a web page</html>"):
        wait_healthy([check], fake.now, fake.clock, fake.sleep)


def test_consumer_checks_say_why_the_consumer_is_not_live_or_behind(fake: FakeTime) -> None:
    """The consumer's own server, its liveness on a clock the test moves: starting, live,
    stuck (the reason it gives, not an excerpt), live again, then too far behind."""
    metrics = ConsumerMetrics()
    now = [1000.0]
    metrics.liveness.clock = lambda: now[0]
    server = metrics.serve(0)
    checks = consumer_checks("127.0.0.1", server.server_port, max_lag=1000)
    base = f"http://127.0.0.1:{server.server_port}"
    assert [(c.name, c.url) for c in checks] == [
        ("adpulse-consumer /healthz", f"{base}/healthz"),
        ("adpulse-consumer lag", f"{base}/metrics"),
    ]

    def failure() -> str:
        with pytest.raises(HealthError) as info:
            wait_healthy(checks, fake.now, fake.clock, fake.sleep)
        return str(info.value)

    try:
        assert failure() == (
            f"not healthy in time: adpulse-consumer /healthz ({base}/healthz): HTTP 503: the "
            "poll loop has not run yet: the consumer is starting [1 tries]"
        )
        metrics.buffered_rows.set(0)  # what the poll loop does on every turn
        assert all(r.ok for r in wait_healthy(checks, fake.now, fake.clock, fake.sleep))
        now[0] += 31
        assert "HTTP 503: the poll loop last ran 31.0 s ago (more than 30 s): it is blocked" in (
            failure()
        )
        metrics.buffered_rows.set(0)
        metrics.lag.labels("3").set(5000)
        message = failure()
        assert "adpulse-consumer lag" in message and "/healthz" not in message
        assert "adpulse_consumer_lag is 5000 messages (more than 1000)" in message
    finally:
        server.shutdown()
        server.server_close()


def test_an_answer_not_from_the_consumer_is_shown_as_it_came() -> None:
    assert consumer_alive(503, b"<html>maintenance</html>") == "HTTP 503: <html>maintenance</html>"
    assert consumer_alive(502, b"[1, 2]") == "HTTP 502: [1, 2]"
    assert consumer_alive(200, b"anything") is None


def test_consumer_checks_put_an_ipv6_address_in_brackets() -> None:
    assert [c.url for c in consumer_checks("fd00::2", 9108, 10)] == [
        "http://[fd00::2]:9108/healthz",
        "http://[fd00::2]:9108/metrics",
    ]


def test_status_reads_an_unexpected_consumer_metrics_page_as_unknown(
    scripted: Callable[[list[Answer]], str],
) -> None:
    """`adpulse status` shows "unknown" (its health lines say why) instead of crashing when a
    host's consumer /metrics is not Prometheus text or lacks what it reads."""
    from deploy.status import _consumer

    not_text = (200, b"<html>a proxy's page</html>\n{")
    no_freshness = (
        200,
        b'# TYPE adpulse_consumer_lag gauge\nadpulse_consumer_lag{partition="0"} 7\n',
    )
    assert _consumer(scripted([not_text])) == (None, None)
    assert _consumer(scripted([no_freshness])) == (7.0, None)
    assert _consumer(scripted([(503, b"starting")])) == (None, None)
