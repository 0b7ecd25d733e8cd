"""One realistic model of ad traffic, and the Python sampler that draws contract events from it.

`seed.seed_sql` draws the same distributions inside ClickHouse from the same derived tables, so
a generated stream and a seeded history look alike. Pure: randomness comes from the caller.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

from adpulse.errors import ConfigError
from adpulse.events import DEVICE_TYPES, Event

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

# Relative volume per UTC hour: overnight trough at 4 am, evening peak at 8 pm (US+EU prime
# time overlap for a US-heavy mix).
DIURNAL = (
    0.80, 0.62, 0.48, 0.38, 0.34, 0.36, 0.45, 0.58, 0.72, 0.82, 0.88, 0.92,
    0.95, 0.96, 0.96, 0.97, 1.00, 1.06, 1.14, 1.22, 1.28, 1.25, 1.12, 0.96,
)  # fmt: skip
# Geo mix of a US-led programmatic buyer; '' is traffic the ad server could not geolocate.
COUNTRIES = (
    ("US", 36.0), ("GB", 7.0), ("DE", 5.5), ("IN", 5.0), ("FR", 4.5), ("CA", 4.0), ("JP", 4.0),
    ("BR", 4.0), ("AU", 2.5), ("MX", 2.5), ("ID", 2.0), ("ES", 2.0), ("IT", 2.0), ("NL", 1.5),
    ("KR", 1.5), ("PH", 1.2), ("TR", 1.2), ("PL", 1.0), ("AR", 1.0), ("SE", 0.8), ("ZA", 0.8),
    ("", 3.0),
)  # fmt: skip
DEVICES = (
    ("mobile", 58.0), ("desktop", 27.0), ("tablet", 6.0), ("ctv", 5.0), ("other", 1.0),
    ("unknown", 3.0),
)  # fmt: skip
_COUNTRY = re.compile(r"^([A-Z]{2})?$")


@dataclass(frozen=True)
class TrafficModel:
    """Who buys, where it runs, how people respond. Money is in USD here, micros in events."""

    advertisers: int = 200
    campaigns: int = 2000
    ads_per_campaign: int = 5
    publishers: int = 5000
    users: int = 20_000_000
    campaign_zipf: float = 1.1  # popularity of campaigns by rank: a few take most impressions
    publisher_zipf: float = 1.0
    advertiser_zipf: float = 0.8  # how campaigns spread over advertisers
    ad_zipf: float = 1.0  # the best creative of a campaign is served most
    ctr: float = 0.012  # median click-through rate; campaigns vary log-normally around it
    cvr: float = 0.04  # median conversions per click
    response_spread: float = 0.4  # log-normal sigma of per-campaign CTR and CVR
    cpm_usd: tuple[float, float] = (0.50, 8.00)  # per-campaign CPM, log-uniform in this range
    price_jitter: float = 0.3  # auction clearing prices vary +-30% around the campaign CPM
    conversion_usd: tuple[float, float] = (5.0, 80.0)  # per-campaign conversion value
    identified_share: float = 0.85  # events that carry a user_id (the rest lack consent)
    diurnal: tuple[float, ...] = DIURNAL
    countries: tuple[tuple[str, float], ...] = COUNTRIES
    devices: tuple[tuple[str, float], ...] = DEVICES
    layout_seed: int = 7  # fixes which campaign gets which advertiser, popularity and prices

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.advertisers <= self.campaigns:
            problems.append(f"advertisers={self.advertisers} must be 1..campaigns")
        # ad_id is campaign_id * 1000 + n, readable and unique while both fit in UInt32.
        if not 1 <= self.campaigns <= 4_000_000 or not 1 <= self.ads_per_campaign <= 999:
            problems.append("campaigns must be 1..4e6 and ads_per_campaign 1..999")
        if min(self.publishers, self.users) < 1:
            problems.append("publishers and users must be >= 1")
        if len(self.diurnal) != 24 or min(self.diurnal) <= 0:
            problems.append("diurnal needs 24 positive hourly weights")
        if not 0 < self.ctr < 0.5 or not 0 < self.cvr < 1:
            problems.append(f"ctr={self.ctr} must be in (0, 0.5) and cvr={self.cvr} in (0, 1)")
        if not 0 < self.cpm_usd[0] <= self.cpm_usd[1] or not 0 <= self.price_jitter < 1:
            problems.append("cpm_usd must be an increasing positive range, price_jitter in [0, 1)")
        if not 0 < self.conversion_usd[0] <= self.conversion_usd[1]:
            problems.append("conversion_usd must be an increasing positive range")
        bad = [c for c, _ in self.countries if not _COUNTRY.match(c)]
        bad += [d for d, _ in self.devices if d not in DEVICE_TYPES | {"unknown"}]
        if bad:
            problems.append(f"unknown country/device values {bad}: use ISO alpha-2 or the enum")
        if problems:
            raise ConfigError("traffic model: " + "; ".join(problems))


def diurnal_weight(model: TrafficModel, hour: int) -> float:
    """Relative event volume in UTC hour `hour` (0-23)."""
    return model.diurnal[hour % 24]


@lru_cache(maxsize=16)
def zipf_weights(n: int, exponent: float) -> tuple[float, ...]:
    """Weights of ranks 1..n, proportional to rank**-exponent."""
    return tuple(rank**-exponent for rank in range(1, n + 1))


@dataclass(frozen=True)
class Slot:
    """A stretch of time inside one UTC hour; events fall uniformly within it."""

    start_ms: int
    end_ms: int
    weight: float  # expected share of events, up to a common factor


def hour_slots(model: TrafficModel, start_ms: int, end_ms: int) -> list[Slot]:
    """Cut [start_ms, end_ms) at hour boundaries; each piece weighs diurnal x its length."""
    slots = []
    at = start_ms
    while at < end_ms:
        edge = min(end_ms, (at // HOUR_MS + 1) * HOUR_MS)
        weight = diurnal_weight(model, at // HOUR_MS % 24) * (edge - at) / HOUR_MS
        slots.append(Slot(at, edge, weight))
        at = edge
    return slots


def _sig(value: float) -> float:
    """Nine significant digits: what the SQL literals carry, so both samplers use the same."""
    return float(f"{value:.9g}")


@dataclass(frozen=True)
class Campaigns:
    """Per-campaign parameters; index i describes campaign_id i + 1."""

    weight: tuple[float, ...]  # share of all events
    advertiser_id: tuple[int, ...]
    impression_below: tuple[float, ...]  # P(impression | campaign)
    click_below: tuple[float, ...]  # P(impression or click | campaign); the rest convert
    cost_per_impression_micros: tuple[int, ...]  # CPM / 1000
    conversion_value_micros: tuple[int, ...]


@lru_cache(maxsize=8)
def campaigns(model: TrafficModel) -> Campaigns:
    """Derive every campaign's advertiser, popularity, response and prices from the model."""
    rng = random.Random(model.layout_seed)
    n = model.campaigns
    popularity = list(zipf_weights(n, model.campaign_zipf))
    rng.shuffle(popularity)  # popular campaigns are spread over ids and advertisers
    total = sum(popularity)
    # Every advertiser runs at least one campaign; big advertisers run many.
    owners = list(range(1, model.advertisers + 1))
    owners += rng.choices(
        owners, weights=zipf_weights(model.advertisers, model.advertiser_zipf), k=n - len(owners)
    )
    rng.shuffle(owners)
    imp, click, cpi, value = [], [], [], []
    for _ in range(n):
        ctr = min(0.2, model.ctr * rng.lognormvariate(0, model.response_spread))
        cvr = min(0.5, model.cvr * rng.lognormvariate(0, model.response_spread))
        # Events of a campaign are impressions, clicks (ctr per impression) and conversions
        # (cvr per click), so their shares are 1 : ctr : ctr * cvr.
        norm = 1 + ctr + ctr * cvr
        imp.append(_sig(1 / norm))
        click.append(_sig((1 + ctr) / norm))
        cpi.append(round(_log_uniform(rng, model.cpm_usd) * 1_000))  # $/1000 imps -> micros/imp
        value.append(round(_log_uniform(rng, model.conversion_usd) * 1_000_000))
    return Campaigns(
        weight=tuple(_sig(p / total) for p in popularity),
        advertiser_id=tuple(owners),
        impression_below=tuple(imp),
        click_below=tuple(click),
        cost_per_impression_micros=tuple(cpi),
        conversion_value_micros=tuple(value),
    )


def _log_uniform(rng: random.Random, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def sample_events(
    model: TrafficModel, n: int, start_ms: int, rng: random.Random, *, days: int = 1
) -> list[Event]:
    """`n` events over the `days` days from `start_ms`, following the diurnal curve."""
    slots = hour_slots(model, start_ms, start_ms + days * DAY_MS)
    picked = rng.choices(slots, cum_weights=list(accumulate(s.weight for s in slots)), k=n)
    rand = rng.random
    times = [s.start_ms + int(rand() * (s.end_ms - s.start_ms)) for s in picked]
    return _draw(model, times, rng)


def iter_events(
    model: TrafficModel, rng: random.Random, clock: Callable[[], int], batch: int = 1000
) -> Iterator[Event]:
    """Endless events stamped with `clock()` (epoch ms) as each batch is drawn; the caller paces."""
    while True:
        yield from _draw(model, [clock()] * batch, rng)


@lru_cache(maxsize=32)
def _cumulative(weights: tuple[float, ...]) -> tuple[float, ...]:
    """Cumulative weights for `random.choices`, computed once per table."""
    return tuple(accumulate(weights))


def _draw(model: TrafficModel, times: list[int], rng: random.Random) -> list[Event]:
    """Everything but the time, vectorised per attribute with cumulative weights."""
    n = len(times)
    table, pick = campaigns(model), rng.choices
    index = pick(range(model.campaigns), cum_weights=_cumulative(table.weight), k=n)
    ad_cum = _cumulative(zipf_weights(model.ads_per_campaign, model.ad_zipf))
    ads = pick(range(1, model.ads_per_campaign + 1), cum_weights=ad_cum, k=n)
    publisher_cum = _cumulative(zipf_weights(model.publishers, model.publisher_zipf))
    publishers = pick(range(1, model.publishers + 1), cum_weights=publisher_cum, k=n)
    names, weights = zip(*model.countries, strict=True)
    countries = pick(names, cum_weights=_cumulative(weights), k=n)
    names, weights = zip(*model.devices, strict=True)
    devices = pick(names, cum_weights=_cumulative(weights), k=n)

    rand, bits = rng.random, rng.getrandbits
    imp, click = table.impression_below, table.click_below
    cpi, value = table.cost_per_impression_micros, table.conversion_value_micros
    owner = table.advertiser_id
    jitter, identified, users = model.price_jitter, model.identified_share, model.users
    out = []
    for at, i, ad, publisher, country, device in zip(
        times, index, ads, publishers, countries, devices, strict=True
    ):
        u = rand()
        cost = revenue = 0
        if u < imp[i]:
            kind = "impression"
            cost = round(cpi[i] * (1 - jitter + 2 * jitter * rand()))
        elif u < click[i]:
            kind = "click"
        else:
            kind = "conversion"
            revenue = round(value[i] * (0.5 + rand()))
        user = f"u{int(rand() * users)}" if rand() < identified else ""
        campaign = i + 1
        h = f"{bits(128) & _V4_MASK | _V4_BITS:032x}"
        event_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        out.append(
            Event(event_id, kind, at, campaign, campaign * 1000 + ad, owner[i], publisher,
                  country, device, cost, revenue, user)
        )  # fmt: skip
    return out


# A random UUID with the version-4 and RFC 4122 variant bits set, as uuid.uuid4() makes.
_V4_MASK = ~((0xF << 76) | (0x3 << 62)) & (2**128 - 1)
_V4_BITS = (0x4 << 76) | (0x2 << 62)
