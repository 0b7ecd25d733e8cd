"""The traffic model and its Python sampler: contract-valid events with realistic shapes."""

from __future__ import annotations

import random
from collections import Counter
from itertools import count, pairwise

import pytest

from adpulse.errors import ConfigError
from adpulse.events import Event, decode, encode
from adpulse.traffic import (
    DAY_MS,
    DIURNAL,
    HOUR_MS,
    TrafficModel,
    campaigns,
    diurnal_weight,
    hour_slots,
    iter_events,
    sample_events,
)

MODEL = TrafficModel()
# 2026-11-26 00:00 UTC: a whole UTC day, so every hour of the curve appears once.
MIDNIGHT_MS = 1_795_651_200_000
N = 200_000


@pytest.fixture(scope="module")
def day() -> list[Event]:
    return sample_events(MODEL, N, MIDNIGHT_MS, random.Random(1))


def test_every_sampled_event_survives_the_wire(day: list[Event]) -> None:
    now_ms = MIDNIGHT_MS + DAY_MS
    for event in day[:20_000]:
        assert decode(encode(event), now_ms=now_ms) == event


def test_click_through_and_conversion_rates_are_plausible(day: list[Event]) -> None:
    types = Counter(e.event_type for e in day)
    assert 0.005 <= types["click"] / types["impression"] <= 0.03
    assert 0.01 <= types["conversion"] / types["click"] <= 0.10


def test_only_impressions_cost_and_only_conversions_earn(day: list[Event]) -> None:
    jitter = MODEL.price_jitter
    low, high = (usd * 1000 for usd in MODEL.cpm_usd)  # micros per impression
    for e in day:
        if e.event_type == "impression":
            assert low * (1 - jitter) - 1 <= e.cost_micros <= high * (1 + jitter) + 1
            assert e.revenue_micros == 0
        elif e.event_type == "click":
            assert e.cost_micros == e.revenue_micros == 0
        else:
            assert e.cost_micros == 0
            assert 2_500_000 <= e.revenue_micros <= 120_000_000


def test_diurnal_curve_peaks_in_the_evening_and_bottoms_out_at_4am(day: list[Event]) -> None:
    per_hour = Counter((e.event_time_ms - MIDNIGHT_MS) // HOUR_MS for e in day)
    assert set(per_hour) == set(range(24))
    assert max(per_hour, key=per_hour.__getitem__) == 20
    assert min(per_hour, key=per_hour.__getitem__) == 4
    ratio = per_hour[20] / per_hour[4]
    assert ratio == pytest.approx(max(DIURNAL) / min(DIURNAL), rel=0.1)


def test_campaign_popularity_has_a_long_tail(day: list[Event]) -> None:
    per_campaign = sorted(Counter(e.campaign_id for e in day).values(), reverse=True)
    top_1_percent = sum(per_campaign[: MODEL.campaigns // 100]) / N
    bottom_half = sum(per_campaign[MODEL.campaigns // 2 :]) / N
    assert top_1_percent > 0.4
    assert bottom_half < 0.1


def test_ids_hang_together(day: list[Event]) -> None:
    owner = campaigns(MODEL).advertiser_id
    assert len({e.event_id for e in day}) == N
    for e in day[:10_000]:
        assert e.ad_id // 1000 == e.campaign_id
        assert 1 <= e.ad_id % 1000 <= MODEL.ads_per_campaign
        assert e.advertiser_id == owner[e.campaign_id - 1]
        assert 1 <= e.publisher_id <= MODEL.publishers


def test_every_advertiser_runs_a_campaign() -> None:
    assert set(campaigns(MODEL).advertiser_id) == set(range(1, MODEL.advertisers + 1))


def test_same_rng_seed_same_events() -> None:
    first = sample_events(MODEL, 500, MIDNIGHT_MS, random.Random(5))
    assert first == sample_events(MODEL, 500, MIDNIGHT_MS, random.Random(5))


def test_events_stay_inside_a_window_that_is_not_hour_aligned() -> None:
    start = MIDNIGHT_MS + 17 * 60_000 + 123
    events = sample_events(MODEL, 5_000, start, random.Random(2), days=2)
    assert all(start <= e.event_time_ms < start + 2 * DAY_MS for e in events)


def test_hour_slots_cut_at_hours_and_weigh_by_length() -> None:
    start = MIDNIGHT_MS + 30 * 60_000
    slots = hour_slots(MODEL, start, start + DAY_MS)
    assert len(slots) == 25
    assert slots[0].start_ms == start and slots[-1].end_ms == start + DAY_MS
    assert all(a.end_ms == b.start_ms for a, b in pairwise(slots))
    assert slots[0].weight == pytest.approx(diurnal_weight(MODEL, 0) / 2)
    assert sum(s.weight for s in slots) == pytest.approx(sum(DIURNAL))


def test_stream_stamps_each_batch_with_the_clock() -> None:
    ticks = count(MIDNIGHT_MS, 1000)
    stream = iter_events(MODEL, random.Random(3), lambda: next(ticks), batch=10)
    times = [next(stream).event_time_ms for _ in range(30)]
    assert times == [MIDNIGHT_MS] * 10 + [MIDNIGHT_MS + 1000] * 10 + [MIDNIGHT_MS + 2000] * 10


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"diurnal": (1.0,) * 23}, "24 positive hourly weights"),
        ({"countries": (("USA", 1.0),)}, "'USA'"),
        ({"devices": (("phone", 1.0),)}, "'phone'"),
        ({"advertisers": 3000}, "advertisers=3000"),
        ({"cpm_usd": (8.0, 0.5)}, "cpm_usd"),
    ],
)
def test_model_refuses_nonsense(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrafficModel(**change)  # type: ignore[arg-type]
