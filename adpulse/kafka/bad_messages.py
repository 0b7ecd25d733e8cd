"""Malformed messages, each with the dead-letter reason the consumer must give it.

Used by `adpulse generate --bad-fraction` and by the tests, so both speak of the same kinds.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from adpulse.events import MAX_MESSAGE_BYTES, Event, encode


@dataclass(frozen=True)
class BadKind:
    name: str
    label: str  # the adpulse.reason header; "duplicate" means dropped as a repeat instead
    make: Callable[[Event, random.Random], bytes]


def _patched(event: Event, **changes: object) -> bytes:
    body = orjson.loads(encode(event))
    body.update(changes)
    return orjson.dumps({k: v for k, v in body.items() if v is not None})


BAD_KINDS: tuple[BadKind, ...] = (
    BadKind("not_json", "not_json", lambda e, r: b"impression,17,4,3,2026-11-27"),
    BadKind("not_object", "not_object", lambda e, r: b'["impression", 17]'),
    BadKind("wrong_type", "wrong_type:campaign_id", lambda e, r: _patched(e, campaign_id="17")),
    BadKind("missing_field", "missing_field:ad_id", lambda e, r: _patched(e, ad_id=None)),
    BadKind(
        "unknown_event_type",
        "unknown_value:event_type",
        lambda e, r: _patched(e, event_type="view"),
    ),
    BadKind("negative_money", "out_of_range:cost_micros", lambda e, r: _patched(e, cost_micros=-1)),
    BadKind(
        "time_years_off",
        "time_out_of_range:event_time",
        lambda e, r: _patched(e, event_time="2019-03-01T00:00:00.000Z"),
    ),
    BadKind(
        "huge_payload",
        "too_large",
        lambda e, r: _patched(e, user_id="x" * (MAX_MESSAGE_BYTES + 1)),
    ),
    BadKind("invalid_utf8", "invalid_utf8", lambda e, r: b'{"event_id": "\xff\xfe"}'),
    BadKind("empty", "empty", lambda e, r: b""),
    BadKind("bad_uuid", "invalid_uuid:event_id", lambda e, r: _patched(e, event_id="12345")),
    BadKind("bad_country", "invalid_country:country", lambda e, r: _patched(e, country="usa")),
    BadKind("duplicate_event_id", "duplicate", lambda e, r: encode(e)),
)
