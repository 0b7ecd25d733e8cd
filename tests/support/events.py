"""Small, varied event sets for tests (the realistic model lives in adpulse.traffic)."""

from __future__ import annotations

import random
import uuid

from adpulse.events import Event

HOUR_MS = 3_600_000


def random_events(n: int, start_ms: int, span_ms: int, seed: int = 7) -> list[Event]:
    """`n` valid events spread over [start_ms, start_ms + span_ms), crossing hours and days."""
    rng = random.Random(seed)
    events = []
    for _ in range(n):
        kind = rng.choices(["impression", "click", "conversion"], [90, 8, 2])[0]
        events.append(
            Event(
                event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                event_type=kind,
                event_time_ms=start_ms + rng.randrange(span_ms),
                campaign_id=rng.randrange(1, 40),
                ad_id=rng.randrange(1, 400),
                advertiser_id=rng.randrange(1, 10),
                publisher_id=rng.randrange(0, 2**32),
                country=rng.choice(["US", "DE", "", "BR"]),
                device_type=rng.choice(["mobile", "desktop", "unknown", "ctv"]),
                cost_micros=rng.randrange(0, 5_000) if kind == "impression" else 0,
                revenue_micros=rng.randrange(0, 90_000_000) if kind == "conversion" else 0,
                user_id=f"u{rng.randrange(10_000)}",
            )
        )
    return events


def mutated(
    rng: random.Random, good: dict[str, object], variants: list[object]
) -> dict[str, object]:
    """`good` with one to three fields dropped (1 in 5) or set to one of `variants`: the fuzz
    tests' bodies."""
    body = dict(good)
    for _ in range(rng.randint(1, 3)):
        field = rng.choice(list(good))
        if rng.random() < 0.2:
            body.pop(field, None)
        else:
            body[field] = rng.choice(variants)
    return body
