"""The SLO gate after a host rejoins: the API's P95 and the consumer's freshness over a window.

The window lies between two samples, each a scrape of the host's API and consumer /metrics.
Metrics read, as api/metrics.py and consumers/metrics.py name them:
- `adpulse_api_request_seconds` (histogram; labels route, method, status). The probe routes
  (/healthz, /readyz, /metrics) are left out: load balancers and this gate call them, and their
  fast answers would hide slow queries.
- `adpulse_freshness_seconds` (gauge): now minus the newest event_time the consumer wrote. It
  reads 0 before the first write, so while `adpulse_rows_written_total` is 0 it is unknown.

P95 is what Prometheus answers for
`histogram_quantile(0.95, sum by (le) (increase(adpulse_api_request_seconds_bucket[window])))`.
"""

from __future__ import annotations

import http.client
import itertools
import math
from dataclasses import dataclass
from enum import StrEnum

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from adpulse.errors import AdpulseError
from deploy.health import excerpt, get

REQUEST_LATENCY = "adpulse_api_request_seconds"
FRESHNESS = "adpulse_freshness_seconds"
ROWS_WRITTEN = "adpulse_rows_written"
PROBE_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})

Buckets = tuple[tuple[float, float], ...]  # cumulative (upper bound `le`, count), ascending
_Series = tuple[tuple[str, str], ...]  # one label set, without `le`


class MetricsError(AdpulseError):
    """A /metrics scrape failed or lacks a metric; the message names the metric and URL."""


@dataclass(frozen=True)
class Scrape:
    url: str
    text: str  # Prometheus text exposition


@dataclass(frozen=True)
class Sample:
    """One moment's scrapes of a host's API and consumer /metrics."""

    api: Scrape
    consumer: Scrape


def scrape(url: str, timeout_s: float = 5.0) -> Scrape:
    """GET a /metrics URL; MetricsError unless it answers 200."""
    try:
        status, body = get(url, timeout_s)
    except (OSError, http.client.HTTPException) as exc:
        raise MetricsError(f"cannot scrape {url}: {exc}") from exc
    if status != 200:
        raise MetricsError(f"cannot scrape {url}: HTTP {status}: {excerpt(body)}")
    return Scrape(url, body.decode("utf-8", "replace"))


def sample(api_url: str, consumer_url: str, timeout_s: float = 5.0) -> Sample:
    return Sample(scrape(api_url, timeout_s), scrape(consumer_url, timeout_s))


def _family(source: Scrape, name: str, kind: str) -> Metric | None:
    try:
        families = list(text_string_to_metric_families(source.text))
    except ValueError as exc:
        raise MetricsError(f"{source.url} is not Prometheus text ({exc})") from exc
    for family in families:
        if family.name == name:
            if family.type != kind:
                raise MetricsError(f"{name} at {source.url} is a {family.type}, not a {kind}")
            return family
    return None


def _required(source: Scrape, name: str, kind: str, service: str) -> Metric:
    family = _family(source, name, kind)
    if family is None:
        raise MetricsError(
            f"{source.url} has no {kind} {name}: is that the adpulse {service}'s /metrics, "
            "of a release that still defines it? (deploy/slo.py names what it reads)"
        )
    return family


def histogram_quantile(q: float, buckets: Buckets) -> float:
    """Prometheus' bucketQuantile (promql/quantile.go): linear inside the bucket holding rank
    q*total; a rank in the +Inf bucket answers the highest finite bound; NaN with no data."""
    if not 0 < q < 1:
        raise ValueError(f"quantile {q} is not between 0 and 1")
    if len(buckets) < 2 or buckets[-1][0] != math.inf:
        return math.nan
    counts = list(itertools.accumulate((c for _, c in buckets), max))  # forced monotonic
    if counts[-1] == 0:
        return math.nan
    rank = q * counts[-1]
    b = next((i for i, c in enumerate(counts[:-1]) if c >= rank), len(counts) - 1)
    if b == len(buckets) - 1:
        return buckets[-2][0]
    if b == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start, below = (buckets[b - 1][0], counts[b - 1]) if b > 0 else (0.0, 0.0)
    return start + (buckets[b][0] - start) * (rank - below) / (counts[b] - below)


@dataclass(frozen=True)
class Window:
    """API requests between two scrapes, summed over routes (probe routes left out)."""

    url: str
    buckets: Buckets
    requests: int
    restarted: bool  # counts went down: the window is the after scrape alone

    def quantile(self, q: float) -> float:
        return histogram_quantile(q, self.buckets)

    def beyond_last_bucket(self, q: float) -> bool:
        """The q-quantile lies in +Inf: its value is only a lower bound."""
        finite = [c for le, c in self.buckets if le != math.inf]
        return bool(finite) and self.requests > 0 and finite[-1] < q * self.requests


def _histograms(source: Scrape, skip_routes: frozenset[str]) -> dict[_Series, dict[float, float]]:
    family = _required(source, REQUEST_LATENCY, "histogram", "API")
    series: dict[_Series, dict[float, float]] = {}
    for s in family.samples:
        if s.name == f"{REQUEST_LATENCY}_bucket" and s.labels.get("route") not in skip_routes:
            key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            series.setdefault(key, {})[float(s.labels["le"])] = s.value
    return series


def _created(source: Scrape) -> dict[_Series, float]:
    """When each series was created (absent if the API runs with _created series disabled)."""
    family = _family(source, f"{REQUEST_LATENCY}_created", "gauge")
    samples = family.samples if family is not None else []
    return {tuple(sorted(s.labels.items())): s.value for s in samples}


def latency_window(
    before: Scrape, after: Scrape, skip_routes: frozenset[str] = PROBE_ROUTES
) -> Window:
    """Bucket deltas of the request-latency histogram from `before` to `after`.

    A process restarted in between shows as a series gone, recreated (its `_created` moved) or
    counting less; then `after` alone is the window, as `increase()` treats a counter reset.
    """
    old, new = _histograms(before, skip_routes), _histograms(after, skip_routes)
    old_created, new_created = _created(before), _created(after)
    restarted = any(
        key not in new
        or old_created.get(key) != new_created.get(key)
        or any(new[key].get(le, 0.0) < count for le, count in buckets.items())
        for key, buckets in old.items()
    )
    total: dict[float, float] = {}
    for key, buckets in new.items():
        base = {} if restarted else old.get(key, {})
        for le, count in buckets.items():
            total[le] = total.get(le, 0.0) + count - base.get(le, 0.0)
    summed = tuple(sorted(total.items()))
    return Window(after.url, summed, round(total.get(math.inf, 0.0)), restarted)


def since_start(source: Scrape, skip_routes: frozenset[str] = PROBE_ROUTES) -> Window:
    """Every API request the process served since it started (probe routes left out)."""
    total: dict[float, float] = {}
    for buckets in _histograms(source, skip_routes).values():
        for le, count in buckets.items():
            total[le] = total.get(le, 0.0) + count
    return Window(source.url, tuple(sorted(total.items())), round(total.get(math.inf, 0.0)), False)


def freshness_s(source: Scrape) -> float | None:
    """The consumer's freshness in seconds; None while it has written no event."""
    rows = _required(source, ROWS_WRITTEN, "counter", "consumer")
    if sum(s.value for s in rows.samples if s.name == f"{ROWS_WRITTEN}_total") == 0:
        return None
    gauge = _required(source, FRESHNESS, "gauge", "consumer")
    return max((s.value for s in gauge.samples), default=None)


class Outcome(StrEnum):
    OK = "ok"
    FAIL = "fail"
    # Too little traffic to judge: fewer than min_requests API requests in the window, or no
    # event written by the consumer yet. Neither a pass nor a failure: the caller decides
    # (wait longer, send synthetic traffic, or accept it on an idle stack and say so).
    TOO_FEW = "too_few"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reasons: tuple[str, ...]  # why it failed, or why it could not judge; empty when OK
    notes: tuple[str, ...]  # facts to print either way (a restart seen in the window)
    requests: int
    p95_ms: float | None  # None when too few requests to judge
    freshness_s: float | None  # the worst of both samples; None when unknown

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


def gate(
    before: Sample,
    after: Sample,
    p95_max_ms: float,
    min_requests: int,
    freshness_max_s: float,
) -> Verdict:
    """Judge the window between two samples: FAIL on any breach, else TOO_FEW, else OK."""
    window = latency_window(before.api, after.api)
    failures: list[str] = []
    undecided: list[str] = []
    notes: list[str] = []
    n = window.requests
    if window.restarted:
        notes.append(
            f"the API at {window.url} restarted between the scrapes (its counts went down): "
            f"the window is its {n} requests since then"
        )
    p95_ms = None
    if n < min_requests:
        undecided.append(f"too few requests in the window to judge (n={n} < min {min_requests})")
    else:
        p95_ms = window.quantile(0.95) * 1000
        if window.beyond_last_bucket(0.95):
            failures.append(
                f"API P95 is above the highest bucket ({p95_ms:g} ms) over {n} requests"
            )
        elif p95_ms > p95_max_ms:
            failures.append(f"API P95 {p95_ms:.1f} ms over {n} requests > {p95_max_ms:g} ms")
    ages = [freshness_s(s.consumer) for s in (before, after)]
    known = [a for a in ages if a is not None]
    worst = max(known) if known else None
    if ages[-1] is None:
        undecided.append(
            f"the consumer at {after.consumer.url} has written no event yet: freshness unknown"
        )
    elif worst is not None and worst > freshness_max_s:
        failures.append(f"consumer freshness {worst:.1f} s > {freshness_max_s:g} s")
    outcome = Outcome.FAIL if failures else Outcome.TOO_FEW if undecided else Outcome.OK
    return Verdict(outcome, tuple(failures + undecided), tuple(notes), n, p95_ms, worst)
