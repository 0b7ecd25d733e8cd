"""The event contract: one JSON object per Kafka message, decoded by a pure function.

`decode` never raises for bad input: it returns an `Event` or a `Rejection` that says which
field was wrong and why, which is what the dead-letter topic records.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal, NamedTuple

import msgspec
import orjson

EVENT_TYPES: Final = frozenset({"impression", "click", "conversion"})
DEVICE_TYPES: Final = frozenset({"mobile", "desktop", "tablet", "ctv", "other"})
MAX_MESSAGE_BYTES: Final = 16 * 1024
MAX_USER_ID_CHARS: Final = 256
MAX_ID: Final = 2**32 - 1
MAX_MICROS: Final = 2**63 - 1
MAX_EVENT_AGE: Final = timedelta(days=30)
MAX_CLOCK_SKEW: Final = timedelta(hours=1)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_AGE_MS: Final = int(MAX_EVENT_AGE.total_seconds() * 1000)
_MAX_SKEW_MS: Final = int(MAX_CLOCK_SKEW.total_seconds() * 1000)
_MS = timedelta(milliseconds=1)
# Matched with fullmatch: `$` would also accept a trailing newline, which the UUID column
# then refuses at insert time, failing the whole batch instead of one message.
_COUNTRY = re.compile(r"[A-Z]{2}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
_SECONDS_CACHE_MAX: Final = 100_000
_ID_FIELDS: Final = ("campaign_id", "ad_id", "advertiser_id", "publisher_id")


class Event(NamedTuple):
    """A valid event; `event_time_ms` is UTC epoch milliseconds. Absent optionals are ''/0.

    A NamedTuple rather than a dataclass: the consumer builds 100k of these a second.
    """

    event_id: str
    event_type: str
    event_time_ms: int
    campaign_id: int
    ad_id: int
    advertiser_id: int
    publisher_id: int
    country: str = ""
    device_type: str = "unknown"
    cost_micros: int = 0
    revenue_micros: int = 0
    user_id: str = ""


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message is not an event: a stable `reason` code, the field, and a human detail."""

    reason: str
    field: str
    detail: str

    def label(self) -> str:
        """`reason:field`, the value of the dead-letter `adpulse.reason` header."""
        return f"{self.reason}:{self.field}" if self.field else self.reason


def _reject(reason: str, field: str, detail: str) -> Rejection:
    return Rejection(reason, field, detail)


def _uint(obj: dict[str, Any], name: str, maximum: int, required: bool) -> int | Rejection:
    value = obj.get(name)
    if value is None:
        return _reject("missing_field", name, f"{name} is required") if required else 0
    # bool is an int in Python; the contract means JSON numbers only.
    if type(value) is not int:
        return _reject("wrong_type", name, f"{name} must be an integer, got {type(value).__name__}")
    if value < 0 or value > maximum:
        return _reject("out_of_range", name, f"{name}={value} is outside 0..{maximum}")
    return value


# "YYYY-MM-DDTHH:MM:SS" -> epoch ms, for prefixes already parsed in full. A stream's events
# share a few seconds, so the usual "...SS.mmmZ" costs a slice and a lookup, not a parse.
_seconds_ms: dict[str, int] = {}


def parse_event_time(text: str) -> int | None:
    """RFC 3339 with an explicit offset to UTC epoch milliseconds; None if not RFC 3339."""
    if len(text) == 24 and text[19] == "." and text[23] == "Z":
        base = _seconds_ms.get(text[:19])
        millis = text[20:23]
        if base is not None and millis.isascii() and millis.isdigit():
            return base + int(millis)
    if not _RFC3339.fullmatch(text):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    # timestamp() is exact to the microsecond for these magnitudes; floor keeps ms semantics.
    result = int(moment.timestamp() * 1000 // 1)
    if len(text) == 24 and text[10] == "T" and text[19] == "." and text[23] == "Z":
        if len(_seconds_ms) >= _SECONDS_CACHE_MAX:
            _seconds_ms.clear()
        _seconds_ms[text[:19]] = result - int(text[20:23])
    return result


class _Wire(msgspec.Struct, gc=False):
    """The contract's types and ranges as a msgspec type: C-speed decoding of the common,
    valid message. String shapes (UUID, country, time) are checked after, in `decode`:
    msgspec's `pattern` calls Python's `re` per field and tripled the cost of a message."""

    event_id: str
    event_type: Literal["impression", "click", "conversion"]
    event_time: str
    campaign_id: Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]
    ad_id: Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]
    advertiser_id: Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]
    publisher_id: Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]
    country: str | None = None
    device_type: Literal["mobile", "desktop", "tablet", "ctv", "other", "unknown", ""] | None = None
    cost_micros: Annotated[int, msgspec.Meta(ge=0, le=MAX_MICROS)] | None = None
    revenue_micros: Annotated[int, msgspec.Meta(ge=0, le=MAX_MICROS)] | None = None
    user_id: Annotated[str, msgspec.Meta(max_length=MAX_USER_ID_CHARS)] | None = None


_wire_decoder = msgspec.json.Decoder(_Wire)
_valid_countries: set[str] = set()


def decode(raw: bytes | None, *, now_ms: int | None = None) -> Event | Rejection:
    """Decode one message. `now_ms` fixes the clock for the event-time window (tests).

    The msgspec fast path accepts valid messages; anything it refuses goes through
    `decode_python`, the reference, which decides and explains. So the verdict is always the
    reference's (a test holds the two to that).
    """
    if not raw or len(raw) > MAX_MESSAGE_BYTES:
        return decode_python(raw, now_ms=now_ms)
    try:
        wire = _wire_decoder.decode(raw)
    except (msgspec.MsgspecError, ValueError):  # incl. invalid UTF-8 inside strings
        return decode_python(raw, now_ms=now_ms)
    country = wire.country
    if not _UUID.fullmatch(wire.event_id):
        return decode_python(raw, now_ms=now_ms)
    if country and country not in _valid_countries:
        if not _COUNTRY.fullmatch(country):
            return decode_python(raw, now_ms=now_ms)
        _valid_countries.add(country)  # at most 26 * 26 entries
    event_time_ms = parse_event_time(wire.event_time)
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    if event_time_ms is None or not (
        now_ms - _MAX_AGE_MS <= event_time_ms <= now_ms + _MAX_SKEW_MS
    ):
        return decode_python(raw, now_ms=now_ms)
    return Event(
        wire.event_id.lower(),
        wire.event_type,
        event_time_ms,
        wire.campaign_id,
        wire.ad_id,
        wire.advertiser_id,
        wire.publisher_id,
        country or "",
        wire.device_type or "unknown",
        wire.cost_micros or 0,
        wire.revenue_micros or 0,
        wire.user_id or "",
    )


def decode_python(raw: bytes | None, *, now_ms: int | None = None) -> Event | Rejection:
    """The reference decoder: plain Python, every reason spelled out."""
    if not raw:
        return _reject("empty", "", "message has no bytes")
    if len(raw) > MAX_MESSAGE_BYTES:
        return _reject("too_large", "", f"{len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return _reject("invalid_utf8", "", "message is not valid UTF-8")
        return _reject("not_json", "", f"not JSON: {exc}")
    if not isinstance(obj, dict):
        return _reject("not_object", "", f"top level is {type(obj).__name__}, not an object")

    event_id = obj.get("event_id")
    if event_id is None:
        return _reject("missing_field", "event_id", "event_id is required")
    if type(event_id) is not str or not _UUID.fullmatch(event_id):
        return _reject("invalid_uuid", "event_id", "event_id must be a UUID string")

    event_type = obj.get("event_type")
    if event_type is None:
        return _reject("missing_field", "event_type", "event_type is required")
    if type(event_type) is not str or event_type not in EVENT_TYPES:
        return _reject("unknown_value", "event_type", f"event_type {str(event_type)[:40]!r}")

    event_time = obj.get("event_time")
    if event_time is None:
        return _reject("missing_field", "event_time", "event_time is required")
    if type(event_time) is not str:
        return _reject("wrong_type", "event_time", "event_time must be an RFC 3339 string")
    event_time_ms = parse_event_time(event_time)
    if event_time_ms is None:
        return _reject(
            "invalid_time", "event_time", f"{event_time[:40]!r} is not RFC 3339 with an offset"
        )
    if now_ms is None:
        now_ms = (datetime.now(UTC) - _EPOCH) // _MS
    if not now_ms - MAX_EVENT_AGE // _MS <= event_time_ms <= now_ms + MAX_CLOCK_SKEW // _MS:
        return _reject(
            "time_out_of_range",
            "event_time",
            f"{event_time} is more than {MAX_EVENT_AGE.days} days old or "
            f"{int(MAX_CLOCK_SKEW.total_seconds() // 3600)} h ahead",
        )

    get = obj.get
    ids: list[int] = []
    for name in _ID_FIELDS:
        value = _uint(obj, name, MAX_ID, required=True)
        if isinstance(value, Rejection):
            return value
        ids.append(value)
    campaign_id, ad_id, advertiser_id, publisher_id = ids

    country = obj.get("country") or ""
    if country and (type(country) is not str or not _COUNTRY.fullmatch(country)):
        return _reject("invalid_country", "country", "country must be ISO 3166-1 alpha-2")
    device_type = obj.get("device_type") or "unknown"
    if device_type != "unknown" and (
        type(device_type) is not str or device_type not in DEVICE_TYPES
    ):
        return _reject("unknown_value", "device_type", f"device_type {str(device_type)[:40]!r}")

    cost = get("cost_micros") or 0
    if type(cost) is not int or not 0 <= cost <= MAX_MICROS:
        return _uint(obj, "cost_micros", MAX_MICROS, required=False)  # type: ignore[return-value]
    revenue = get("revenue_micros") or 0
    if type(revenue) is not int or not 0 <= revenue <= MAX_MICROS:
        return _uint(obj, "revenue_micros", MAX_MICROS, required=False)  # type: ignore[return-value]

    user_id = obj.get("user_id") or ""
    if type(user_id) is not str or len(user_id) > MAX_USER_ID_CHARS:
        return _reject(
            "wrong_type", "user_id", f"user_id must be a string of <= {MAX_USER_ID_CHARS}"
        )

    return Event(
        event_id.lower(),
        event_type,
        event_time_ms,
        campaign_id,
        ad_id,
        advertiser_id,
        publisher_id,
        country,
        device_type,
        cost,
        revenue,
        user_id,
    )


def encode(event: Event) -> bytes:
    """The wire form of an event, as an ad server would produce it."""
    moment = _EPOCH + event.event_time_ms * _MS
    body: dict[str, Any] = {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "event_time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "campaign_id": event.campaign_id,
        "ad_id": event.ad_id,
        "advertiser_id": event.advertiser_id,
        "publisher_id": event.publisher_id,
    }
    if event.country:
        body["country"] = event.country
    if event.device_type != "unknown":
        body["device_type"] = event.device_type
    if event.cost_micros:
        body["cost_micros"] = event.cost_micros
    if event.revenue_micros:
        body["revenue_micros"] = event.revenue_micros
    if event.user_id:
        body["user_id"] = event.user_id
    return orjson.dumps(body)


# Columns of the events table in insert order, and how each comes from an Event.
EVENT_COLUMNS: Final = (
    "event_id",
    "event_type",
    "event_time",
    "campaign_id",
    "ad_id",
    "advertiser_id",
    "publisher_id",
    "country",
    "device_type",
    "cost_micros",
    "revenue_micros",
    "user_id",
)


def to_columns(events: list[Event]) -> dict[str, list[Any]]:
    """Columnar form for `ClickHouseClient.insert` (event_time as epoch ms)."""
    return {
        "event_id": [e.event_id for e in events],
        "event_type": [e.event_type for e in events],
        "event_time": [e.event_time_ms for e in events],
        "campaign_id": [e.campaign_id for e in events],
        "ad_id": [e.ad_id for e in events],
        "advertiser_id": [e.advertiser_id for e in events],
        "publisher_id": [e.publisher_id for e in events],
        "country": [e.country for e in events],
        "device_type": [e.device_type for e in events],
        "cost_micros": [e.cost_micros for e in events],
        "revenue_micros": [e.revenue_micros for e in events],
        "user_id": [e.user_id for e in events],
    }
