"""deploy.slo on scrapes of the API's and the consumer's own metrics objects (api/metrics.py,
consumers/metrics.py), served over HTTP by prometheus_client: bucket deltas, P95 as
histogram_quantile computes it, restarts between scrapes, and missing metrics."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import (
    CollectorRegistry,
    disable_created_metrics,
    enable_created_metrics,
    start_http_server,
)

from api.metrics import ApiMetrics
from consumers.metrics import ConsumerMetrics
from deploy.slo import (
    MetricsError,
    Outcome,
    Sample,
    gate,
    histogram_quantile,
    latency_window,
    scrape,
)
from tests.support.clickhouse_server import free_port

Serve = Callable[[CollectorRegistry], str]

# The window's 100 requests, chosen so P95 is computable by hand from the API's buckets
# (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, ...):
#   50 x 4 ms -> le 0.005 | 30 x 20 ms -> le 0.025 | 10 x 80 ms -> le 0.1 | 10 x 200 ms -> le 0.25
# Cumulative: le 0.1 holds 90, le 0.15 holds 90, le 0.25 holds 100. rank = 0.95 * 100 = 95,
# first bucket with >= 95 is le 0.25, whose lower bound is 0.15 with 90 below it:
#   P95 = 0.15 + (0.25 - 0.15) * (95 - 90) / (100 - 90) = 0.2 s = 200 ms.
WINDOW = [(0.004, 50), (0.020, 30), (0.080, 10), (0.200, 10)]
ROUTE = ("/api/v1/summary", "GET", "200")


def observe(metrics: ApiMetrics, spread: list[tuple[float, int]], route: tuple[str, ...]) -> None:
    for seconds, times in spread:
        for _ in range(times):
            metrics.requests.labels(*route).observe(seconds)


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Serve a registry's /metrics on 127.0.0.1, as the consumer serves its own."""
    servers = []

    def start(registry: CollectorRegistry) -> str:
        server, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/metrics"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def consumer(serve: Serve) -> tuple[ConsumerMetrics, str]:
    metrics = ConsumerMetrics()
    metrics.rows.inc(5000)
    metrics.freshness.set(1.5)
    return metrics, serve(metrics.registry)


def test_p95_from_bucket_deltas_matches_hand_computation(serve: Serve) -> None:
    api = ApiMetrics()
    url = serve(api.registry)
    # Before the window: 40 slow answers (3 s) that must not count, and probes at any time.
    observe(api, [(3.0, 40)], ROUTE)
    observe(api, [(9.0, 5)], ("/readyz", "GET", "200"))
    before = scrape(url)
    observe(api, WINDOW, ROUTE)
    observe(api, [(9.0, 50)], ("/readyz", "GET", "503"))
    observe(api, [(9.0, 50)], ("/metrics", "GET", "200"))
    window = latency_window(before, scrape(url))
    assert (window.requests, window.restarted) == (100, False)
    assert window.quantile(0.95) == pytest.approx(0.2)
    # The same by the rule's other branches: P50 is the top of le 0.005 (50 of 50 by 0.005).
    assert window.quantile(0.5) == pytest.approx(0.005)


def test_requests_spread_over_routes_and_statuses_are_summed(serve: Serve) -> None:
    api = ApiMetrics()
    url = serve(api.registry)
    before = scrape(url)
    observe(api, WINDOW[:2], ROUTE)
    observe(api, WINDOW[2:3], ("/api/v1/live", "GET", "200"))
    observe(api, WINDOW[3:], ("unmatched", "GET", "404"))
    window = latency_window(before, scrape(url))
    assert window.requests == 100
    assert window.quantile(0.95) == pytest.approx(0.2)


def test_histogram_quantile_edges() -> None:
    inf = math.inf
    # First bucket: interpolated from 0. rank 0.5 * 10 = 5 of 10 in (0, 0.1] -> 0.05.
    assert histogram_quantile(0.5, ((0.1, 10), (1.0, 10), (inf, 10))) == pytest.approx(0.05)
    # Rank in +Inf: the highest finite bound, as Prometheus answers.
    assert histogram_quantile(0.95, ((0.1, 1), (1.0, 2), (inf, 10))) == 1.0
    assert math.isnan(histogram_quantile(0.95, ((0.1, 0), (inf, 0))))
    assert math.isnan(histogram_quantile(0.95, ((0.1, 3), (1.0, 4))))  # no +Inf bucket


def test_gate_passes_fails_and_names_why(
    serve: Serve, consumer: tuple[ConsumerMetrics, str]
) -> None:
    api = ApiMetrics()
    api_url = serve(api.registry)
    metrics, consumer_url = consumer
    before = Sample(scrape(api_url), scrape(consumer_url))
    observe(api, WINDOW, ROUTE)
    after = Sample(scrape(api_url), scrape(consumer_url))
    passed = gate(before, after, p95_max_ms=250, min_requests=50, freshness_max_s=5)
    assert (passed.outcome, passed.ok, passed.reasons, passed.requests) == (
        Outcome.OK,
        True,
        (),
        100,
    )
    assert passed.p95_ms == pytest.approx(200)
    assert passed.freshness_s == 1.5

    metrics.freshness.set(42.0)
    stale = Sample(scrape(api_url), scrape(consumer_url))
    failed = gate(before, stale, p95_max_ms=150, min_requests=50, freshness_max_s=5)
    assert (failed.outcome, failed.ok) == (Outcome.FAIL, False)
    assert failed.reasons == (
        "API P95 200.0 ms over 100 requests > 150 ms",
        "consumer freshness 42.0 s > 5 s",
    )


def test_too_few_requests_is_neither_pass_nor_fail(
    serve: Serve, consumer: tuple[ConsumerMetrics, str]
) -> None:
    api = ApiMetrics()
    api_url = serve(api.registry)
    before = Sample(scrape(api_url), scrape(consumer[1]))
    observe(api, [(3.0, 19)], ROUTE)  # slow, but too few to say so
    verdict = gate(before, Sample(scrape(api_url), scrape(consumer[1])), 250, 20, 5)
    assert (verdict.outcome, verdict.ok, verdict.p95_ms) == (Outcome.TOO_FEW, False, None)
    assert verdict.reasons == ("too few requests in the window to judge (n=19 < min 20)",)


def test_consumer_that_wrote_nothing_has_unknown_freshness(serve: Serve) -> None:
    api, idle = ApiMetrics(), ConsumerMetrics()  # its freshness gauge reads 0: not "fresh"
    api_url, consumer_url = serve(api.registry), serve(idle.registry)
    before = Sample(scrape(api_url), scrape(consumer_url))
    observe(api, WINDOW, ROUTE)
    verdict = gate(before, Sample(scrape(api_url), scrape(consumer_url)), 250, 50, 5)
    assert verdict.outcome is Outcome.TOO_FEW
    assert verdict.reasons == (
        f"the consumer at {consumer_url} has written no event yet: freshness unknown",
    )


def test_restart_between_scrapes_uses_the_after_scrape(
    serve: Serve, consumer: tuple[ConsumerMetrics, str]
) -> None:
    old = ApiMetrics()
    observe(old, [(3.0, 500)], ROUTE)
    before = Sample(scrape(serve(old.registry)), scrape(consumer[1]))
    new = ApiMetrics()  # the process restarted: its counts start again from 0
    observe(new, WINDOW, ROUTE)
    after = Sample(scrape(serve(new.registry)), scrape(consumer[1]))
    verdict = gate(before, after, p95_max_ms=250, min_requests=50, freshness_max_s=5)
    assert (verdict.outcome, verdict.requests) == (Outcome.OK, 100)
    assert verdict.p95_ms == pytest.approx(200)
    assert verdict.notes == (
        f"the API at {after.api.url} restarted between the scrapes (its counts went down): "
        "the window is its 100 requests since then",
    )


def test_restart_seen_by_created_time_even_when_counts_grew(serve: Serve) -> None:
    old = ApiMetrics()
    observe(old, [(3.0, 10)], ROUTE)
    before = scrape(serve(old.registry))
    new = ApiMetrics()  # more requests since the restart than before it: counts went up
    observe(new, WINDOW, ROUTE)
    window = latency_window(before, scrape(serve(new.registry)))
    # after minus before would count 90 requests, with buckets that are not cumulative.
    assert (window.restarted, window.requests) == (True, 100)
    assert window.quantile(0.95) == pytest.approx(0.2)


def test_restart_seen_by_counts_without_created_series(serve: Serve) -> None:
    disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        old, new = ApiMetrics(), ApiMetrics()
        observe(old, [(3.0, 500)], ROUTE)
        observe(new, WINDOW, ROUTE)
        before, after = scrape(serve(old.registry)), scrape(serve(new.registry))
    finally:
        enable_created_metrics()  # type: ignore[no-untyped-call]
    assert "_created" not in after.text
    window = latency_window(before, after)
    assert (window.restarted, window.requests) == (True, 100)


def test_missing_metric_names_metric_and_url(serve: Serve) -> None:
    wrong = serve(ConsumerMetrics().registry)  # the consumer's port given as the API's
    with pytest.raises(MetricsError) as caught:
        latency_window(scrape(wrong), scrape(wrong))
    assert str(caught.value) == (
        f"{wrong} has no histogram adpulse_api_request_seconds: is that the adpulse API's "
        "/metrics, of a release that still defines it? (deploy/slo.py names what it reads)"
    )


def test_missing_consumer_metric_names_it(serve: Serve) -> None:
    api_url = serve(ApiMetrics().registry)
    both = Sample(scrape(api_url), scrape(api_url))  # the API's port given as the consumer's
    with pytest.raises(MetricsError, match=f"^{api_url} has no counter adpulse_rows_written: "):
        gate(both, both, 250, 0, 5)


def test_a_scrape_that_fails_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    with pytest.raises(MetricsError, match=f"^cannot scrape {url}: .*Connection refused"):
        scrape(url, timeout_s=1)
