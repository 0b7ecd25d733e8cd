"""`decode_many`, the consumer's batch decoder, held equal to the reference decoder
`decode_python` message by message, whatever a batch mixes."""

from __future__ import annotations

import random

import orjson
import pytest

from adpulse.events import (
    EVENT_COLUMNS,
    MAX_MESSAGE_BYTES,
    Event,
    Rejection,
    decode_many,
    decode_python,
    encode,
    to_columns,
)
from adpulse.kafka.bad_messages import BAD_KINDS
from tests.support.events import mutated, random_events
from tests.test_events import GOOD, NOW_MS

# Values that each break one check of the fast path, or pass it only by the reference.
VARIANTS: list[object] = [
    "x", "", None, 0, -1, 1.5, 2**32, 2**63, True, False, "US", "us", "U", {"a": 1}, [1],
    "x" * 300, "US\n", "ctv", "unknown", "impression",
    "8B0C1A9E-3F0E-4A43-9A57-0C5B1F0B6E21",  # upper case: valid, stored lower-cased
    "8B0C1A9E3F0E4A439A570C5B1F0B6E21",
    "8b0c1a9e-3f0e-4a43-9a57-0c5b1f0b6e2g",  # 36 characters, one not hex
    "8b0c1a9e-3f0e-4a43-9a57-0c5b1f0b6e2\n",
    "8b0c1a9e+3f0e-4a43-9a57-0c5b1f0b6e21",
    "\u00e9" * 36,
    "2026-11-27T11:00:00.123Z", "2026-11-27T11:00:00+01:00", "2026-11-27T11:00:00+0100",
    "2026-11-27T11:00:00.1234567Z", "2026-11-27t11:00:00z", "2026-11-27T11:00:00Z\n",
    "2026-11-27T11:00:0x.123Z", "2026-13-27T11:00:00.123Z", "2026-11-31T11:00:00.123Z",
    "2026-11-27T11:00:00.\uff11\uff12\uff13Z", "1970-01-01T00:00:00.000Z",
]  # fmt: skip


def _mutated(rng: random.Random) -> bytes:
    return orjson.dumps(mutated(rng, GOOD, VARIANTS))


def _odd_messages(rng: random.Random) -> list[bytes | None]:
    """Messages the fast path refuses or must look at twice, each kind at least once."""
    event = decode_python(orjson.dumps(GOOD), now_ms=NOW_MS)
    assert isinstance(event, Event)
    accepted_by_reference_only = [
        orjson.dumps({**GOOD, "country": None}),  # explicit nulls mean "absent"
        orjson.dumps({**GOOD, "user_id": None, "cost_micros": None}),
        orjson.dumps({**GOOD, "device_type": ""}),
        orjson.dumps({**GOOD, "revenue_micros": False}),
    ]
    oversized_but_valid = orjson.dumps({**GOOD, "pad": "x" * MAX_MESSAGE_BYTES})
    return [
        *(kind.make(event, rng) for kind in BAD_KINDS),
        *accepted_by_reference_only,
        oversized_but_valid,
        None,
        b"",
        *(_mutated(rng) for _ in range(400)),
    ]


def _valid(n: int, seed: int) -> list[bytes | None]:
    return [encode(e) for e in random_events(n, NOW_MS - 3_600_000, 3_600_000, seed=seed)]


def _reference(raws: list[bytes | None]) -> list[Event | Rejection]:
    return [decode_python(raw, now_ms=NOW_MS) for raw in raws]


@pytest.mark.parametrize(("size", "odd_share"), [(1, 1.0), (2, 0.5), (37, 0.3), (600, 0.02),
                                                 (3000, 0.01), (500, 1.0), (400, 0.0)])  # fmt: skip
def test_every_verdict_is_the_reference_verdict(size: int, odd_share: float) -> None:
    rng = random.Random(size)
    valid, odd = _valid(size, seed=size), _odd_messages(rng)
    for _ in range(20):
        raws = [rng.choice(odd) if rng.random() < odd_share else rng.choice(valid)
                for _ in range(size)]  # fmt: skip
        decoded = decode_many(raws, now_ms=NOW_MS)
        assert all(len(column) == size for column in decoded.columns)
        assert decoded.results() == _reference(raws)


def test_the_columns_are_the_insert_columns_of_the_events() -> None:
    raws = _valid(500, seed=1)
    raws[10:10] = [b"not json", orjson.dumps({**GOOD, "country": None})]
    decoded = decode_many(raws, now_ms=NOW_MS)
    events = [r for r in _reference(raws) if isinstance(r, Event)]
    kept = [i for i in range(len(raws)) if i not in decoded.rejected]
    columns = {
        name: [column[i] for i in kept]
        for name, column in zip(EVENT_COLUMNS, decoded.columns, strict=True)
    }
    assert columns == to_columns(events)
    assert list(decoded.rejected) == [10]


def test_one_bad_id_among_many_is_rejected_alone() -> None:
    """A batch's ids are checked together; the one bad id must still be found, and only it."""
    raws = _valid(1000, seed=2)
    raws[700] = orjson.dumps({**GOOD, "event_id": "8b0c1a9e-3f0e-4a43-9a57-0c5b1f0b6e2z"})
    decoded = decode_many(raws, now_ms=NOW_MS)
    assert list(decoded.rejected) == [700]
    assert decoded.rejected[700].label() == "invalid_uuid:event_id"


def test_upper_case_ids_are_stored_lower_case_among_lower_case_ones() -> None:
    raws = _valid(50, seed=3)
    raws[5] = orjson.dumps({**GOOD, "event_id": GOOD["event_id"].upper()})  # type: ignore[attr-defined]
    decoded = decode_many(raws, now_ms=NOW_MS)
    assert not decoded.rejected
    assert decoded.columns[0][5] == GOOD["event_id"]
    assert decoded.results() == _reference(raws)


def test_a_batch_of_nothing_and_a_batch_of_only_bad_messages() -> None:
    assert decode_many([], now_ms=NOW_MS).results() == []
    bad: list[bytes | None] = [None, b"", b"[1]", b"{}"]
    assert decode_many(bad, now_ms=NOW_MS).results() == _reference(bad)
