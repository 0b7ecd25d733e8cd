"""The event contract: decoder verdicts, round trips, and agreement with the JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson
import pytest

from adpulse.events import Event, Rejection, decode, encode, parse_event_time
from tests.support.events import mutated

NOW_MS = 1_795_780_800_000  # 2026-11-27T12:00:00Z
SCHEMA = json.loads((Path(__file__).parents[1] / "adpulse" / "event.schema.json").read_text())
GOOD = {
    "event_id": "8b0c1a9e-3f0e-4a43-9a57-0c5b1f0b6e21",
    "event_type": "click",
    "event_time": "2026-11-27T11:59:58.250+01:00",
    "campaign_id": 17,
    "ad_id": 4,
    "advertiser_id": 3,
    "publisher_id": 4294967295,
    "country": "DE",
    "device_type": "ctv",
    "cost_micros": 0,
    "revenue_micros": 12_000_000,
    "user_id": "u-1",
    "something_new": {"ignored": True},
}


def verdict(obj: object) -> Event | Rejection:
    return decode(orjson.dumps(obj), now_ms=NOW_MS)


def test_valid_event_decodes_with_utc_milliseconds() -> None:
    event = verdict(GOOD)
    assert isinstance(event, Event)
    assert event.event_time_ms == NOW_MS - 3_600_000 - 1_750
    assert (event.campaign_id, event.publisher_id, event.country) == (17, 4294967295, "DE")


def test_optional_fields_default_when_absent() -> None:
    minimal = {k: GOOD[k] for k in SCHEMA["required"]}
    event = verdict(minimal)
    assert isinstance(event, Event)
    assert (event.country, event.device_type, event.cost_micros, event.user_id) == (
        "",
        "unknown",
        0,
        "",
    )


def test_encode_decode_round_trip() -> None:
    event = verdict(GOOD)
    assert isinstance(event, Event)
    assert decode(encode(event), now_ms=NOW_MS) == event


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        (b"", "empty"),
        (b"not json", "not_json"),
        (b"\xff\xfe{}", "invalid_utf8"),
        (b"[1, 2]", "not_object"),
        (b"x" * 20_000, "too_large"),
    ],
)
def test_undecodable_messages(raw: bytes, label: str) -> None:
    result = decode(raw, now_ms=NOW_MS)
    assert isinstance(result, Rejection)
    assert result.label() == label


@pytest.mark.parametrize(
    ("change", "label"),
    [
        ({"event_id": "nope"}, "invalid_uuid:event_id"),
        ({"event_id": None}, "missing_field:event_id"),
        ({"event_type": "view"}, "unknown_value:event_type"),
        ({"event_time": "2026-11-27 12:00:00"}, "invalid_time:event_time"),
        ({"event_time": "2026-11-27"}, "invalid_time:event_time"),
        ({"event_time": 1795780800}, "wrong_type:event_time"),
        ({"event_time": "2019-01-01T00:00:00Z"}, "time_out_of_range:event_time"),
        ({"event_time": "2026-11-27T14:00:00Z"}, "time_out_of_range:event_time"),
        ({"campaign_id": "17"}, "wrong_type:campaign_id"),
        ({"campaign_id": True}, "wrong_type:campaign_id"),
        ({"campaign_id": 1.5}, "wrong_type:campaign_id"),
        ({"ad_id": -1}, "out_of_range:ad_id"),
        ({"publisher_id": 2**32}, "out_of_range:publisher_id"),
        ({"advertiser_id": None}, "missing_field:advertiser_id"),
        ({"cost_micros": -5}, "out_of_range:cost_micros"),
        ({"revenue_micros": "12"}, "wrong_type:revenue_micros"),
        ({"country": "Germany"}, "invalid_country:country"),
        ({"device_type": "fridge"}, "unknown_value:device_type"),
        ({"user_id": 7}, "wrong_type:user_id"),
    ],
)
def test_invalid_fields_are_rejected_with_a_precise_reason(
    change: dict[str, object], label: str
) -> None:
    body = {**GOOD, **change}
    body = {k: v for k, v in body.items() if v is not None}
    result = verdict(body)
    assert isinstance(result, Rejection), result
    assert result.label() == label
    assert result.detail


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"event_id": "nope"},
        {"event_type": "view"},
        {"campaign_id": "17"},
        {"ad_id": -1},
        {"publisher_id": 2**32},
        {"cost_micros": -5},
        {"country": "Germany"},
        {"device_type": "fridge"},
        {"event_time": "2026-11-27 12:00:00"},
    ],
)
def test_json_schema_agrees_with_decoder(change: dict[str, object]) -> None:
    body = {**GOOD, **change}
    schema_ok = jsonschema.Draft202012Validator(SCHEMA).is_valid(body)
    assert schema_ok == isinstance(verdict(body), Event)


def test_parse_event_time_keeps_milliseconds_and_offsets() -> None:
    assert parse_event_time("1970-01-01T00:00:00.001Z") == 1
    assert parse_event_time("1970-01-01T01:00:00+01:00") == 0
    assert parse_event_time("1970-01-01T00:00:00") is None


@pytest.mark.parametrize("field", ["event_id", "country", "event_time"])
def test_a_trailing_newline_is_refused_not_stored(field: str) -> None:
    """`$` in a regex also matches before a final newline; such an event_id would fail the
    UUID column at insert time and with it the whole batch, so it must be refused here."""
    result = verdict({**GOOD, field: f"{GOOD[field]}\n"})
    assert isinstance(result, Rejection)
    assert result.field == field


def test_fast_path_and_reference_decoder_always_agree() -> None:
    """`decode` may only accept what `decode_python` accepts, with the same result."""
    import random

    from adpulse.events import decode_python
    from adpulse.kafka.bad_messages import BAD_KINDS

    rng = random.Random(99)
    variants: list[object] = [
        "x", "", None, 0, -1, 1.5, 2**32, 2**63, True, "US", "us", "2026-11-27T11:00:00+0100",
        "2026-11-27T11:00:00.1234567Z", "2026-11-27t11:00:00z", "8B0C1A9E3F0E4A439A570C5B1F0B6E21",
        "ctv", "unknown", "impression", {"a": 1}, [1], "x" * 300, "US\n", "2026-11-27T11:00:00Z\n",
        "8b0c1a9e-3f0e-4a43-9a57-0c5b1f0b6e21\n", "2026-11-27T11:00:00.123Z",
        "2026-11-27T11:00:0x.123Z", "2026-11-27T11:00:00.1x3Z", "2026-13-27T11:00:00.123Z",
        "2026-11-27T11:00:00.\uff11\uff12\uff13Z",  # fullwidth digits: isdigit() but not ASCII
    ]  # fmt: skip
    bodies = []
    for _ in range(3000):
        bodies.append(orjson.dumps(mutated(rng, GOOD, variants)))
    event = verdict(GOOD)
    assert isinstance(event, Event)
    bodies += [kind.make(event, rng) for kind in BAD_KINDS]
    for raw in bodies:
        assert decode(raw, now_ms=NOW_MS) == decode_python(raw, now_ms=NOW_MS), raw
