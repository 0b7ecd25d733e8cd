"""The event contract: one JSON object per Kafka message, decoded by a pure function.

`decode` never raises for bad input: it returns an `Event` or a `Rejection` that says which
field was wrong and why, which is what the dead-letter topic records. `decode_many`, which the
consumer runs on each fetched chunk, gives the same verdicts for a batch as insert columns;
`decode_python` is the reference both are held to.
"""

from __future__ import annotations

import re
import string
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any, Final, Literal, NamedTuple

import msgspec
import orjson
from msgspec.structs import astuple

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


def _country_codes() -> tuple[str, ...]:
    upper = string.ascii_uppercase
    return ("", *(a + b for a in upper for b in upper))


# The contract's types and ranges as a msgspec type, fields in `EVENT_COLUMNS` order: C-speed
# decoding of the common, valid message. What msgspec cannot check in C (event_id's shape,
# event_time) `decode_many` checks for a whole batch at once; msgspec's `pattern` would call
# Python's `re` per field (it tripled the cost of a message). Explicit nulls, and '' for
# device_type, are refused here although the contract allows them: the reference judges
# those rare messages, so the defaults below are the values the columns take.
_Wire: Any = msgspec.defstruct(
    "_Wire",
    [
        ("event_id", Annotated[str, msgspec.Meta(min_length=36, max_length=36)]),
        ("event_type", Literal["impression", "click", "conversion"]),
        ("event_time", str),
        ("campaign_id", Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]),
        ("ad_id", Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]),
        ("advertiser_id", Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]),
        ("publisher_id", Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]),
        # A Literal is checked by one hash lookup in C and decodes to one shared string.
        ("country", Literal.__getitem__(_country_codes()), ""),
        ("device_type", Literal["mobile", "desktop", "tablet", "ctv", "other", "unknown"],
         "unknown"),
        ("cost_micros", Annotated[int, msgspec.Meta(ge=0, le=MAX_MICROS)], 0),
        ("revenue_micros", Annotated[int, msgspec.Meta(ge=0, le=MAX_MICROS)], 0),
        ("user_id", Annotated[str, msgspec.Meta(max_length=MAX_USER_ID_CHARS)], ""),
    ],
    gc=False,
)  # fmt: skip
# A None (a Kafka message without a value) raises TypeError, as malformed JSON raises.
_decode_wire: Callable[[bytes | None], Any] = msgspec.json.Decoder(_Wire).decode  # type: ignore[assignment]
_WIRE_ERRORS = (msgspec.MsgspecError, ValueError, TypeError)
_as_event: Callable[[tuple[Any, ...]], Event] = partial(tuple.__new__, Event)
# event_id shape check for a batch: hex digits become "x", "-" and the "\n" joining the ids
# stay, anything else becomes "!"; the result must be the UUID form once per id.
_UUID_CLASSES = bytes(
    ord("x") if chr(i) in string.hexdigits else i if chr(i) in "-\n" else ord("!")
    for i in range(256)
)
# The same, with upper-case hex digits refused: ids that pass are valid and need no lowering.
_LOWER_UUID_CLASSES = bytes(
    ord("x") if chr(i) in "0123456789abcdef" else i if chr(i) in "-\n" else ord("!")
    for i in range(256)
)
_UUID_FORM = b"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
_UUID_BLOCK = 256  # ids checked together while looking for the bad ones of a batch
# Holds the place of a message msgspec refused, so the columns stay one entry per message.
_PLACEHOLDER = _Wire(
    "00000000-0000-0000-0000-000000000000", "impression", "1970-01-01T00:00:00.000Z", 0, 0, 0, 0
)


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """`decode_many`'s answer: every message's values as insert columns, and the rejections.

    `columns` follow `EVENT_COLUMNS` (event_time as epoch ms) with one entry per message, so
    message `i`'s event is `column[i]` of each; a rejected message's entries mean nothing.
    `rejected` maps the index of each message that is not an event to its `Rejection`.
    """

    columns: tuple[Sequence[Any], ...]
    rejected: dict[int, Rejection]

    def results(self) -> list[Event | Rejection]:
        """One verdict per message, as `decode` gives it (tests; the consumer reads columns)."""
        rejected = self.rejected
        return [
            rejected[i] if i in rejected else _as_event(row)
            for i, row in enumerate(zip(*self.columns, strict=True))
        ]


def decode(raw: bytes | None, *, now_ms: int | None = None) -> Event | Rejection:
    """Decode one message. `now_ms` fixes the clock for the event-time window (tests)."""
    return decode_many([raw], now_ms=now_ms).results()[0]


def decode_many(raws: Sequence[bytes | None], *, now_ms: int | None = None) -> DecodedBatch:
    """`[decode_python(raw, now_ms=now_ms) for raw in raws]`, as columns, a batch at a time.

    Each message is decoded by msgspec (the loop over them runs in C); the checks msgspec does
    not make run once over the batch's columns; no Python object is built per event. Only the
    messages something refused go through `decode_python`, the reference, which decides and
    explains, so every verdict is the reference's (a test holds the two to that).
    """
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    wires: list[Any] = []
    refused: list[int] = []  # the messages msgspec refused, each held by a placeholder
    rest = iter(raws)
    while True:
        try:
            wires.extend(map(_decode_wire, rest))  # keeps what it decoded when one fails
            break
        except _WIRE_ERRORS:
            refused.append(len(wires))
            wires.append(_PLACEHOLDER)
    if not wires:
        return DecodedBatch(((),) * len(EVENT_COLUMNS), {})
    columns: list[Sequence[Any]] = list(zip(*map(astuple, wires), strict=True))
    del wires
    judged = {*refused, *_oversized(raws)}
    if not _ids_match(columns[0], _LOWER_UUID_CLASSES):  # else all valid, in lower case
        judged.update(_bad_ids(columns[0]))
        columns[0] = _lower(columns[0])
    times = columns[2]
    columns[2], bad_times = _event_millis(times, now_ms)
    for text in bad_times:
        judged.update(_positions(times, text))
    rejected: dict[int, Rejection] = {}
    for index in sorted(judged):
        verdict = decode_python(raws[index], now_ms=now_ms)
        if isinstance(verdict, Rejection):
            rejected[index] = verdict
            continue
        # The reference accepts what msgspec refused (an explicit null, say).
        for c, value in enumerate(verdict):
            if not isinstance(columns[c], list):
                columns[c] = list(columns[c])
            columns[c][index] = value  # type: ignore[index]
    return DecodedBatch(tuple(columns), rejected)


def _oversized(raws: Sequence[bytes | None]) -> list[int]:
    """Indices of the messages over `MAX_MESSAGE_BYTES` (msgspec does not look at the size)."""
    try:
        longest = max(map(len, raws))  # type: ignore[arg-type]  # a None raises: counted below
    except TypeError:
        longest = max((len(raw) for raw in raws if raw), default=0)
    if longest <= MAX_MESSAGE_BYTES:
        return []
    return [i for i, raw in enumerate(raws) if raw and len(raw) > MAX_MESSAGE_BYTES]


def _ids_match(ids: Sequence[str], classes: bytes) -> bool:
    """Whether every id has the UUID form under `classes`: one pass in C over the joined ids."""
    joined = "\n".join(ids)
    return joined.isascii() and joined.encode().translate(classes) == b"\n".join(
        [_UUID_FORM] * len(ids)
    )


def _bad_ids(ids: Sequence[str]) -> list[int]:
    """Positions of the ids `_UUID` does not match; blocks first, so a few bad ids cost little."""
    if _ids_match(ids, _UUID_CLASSES):
        return []
    bad = []
    for start in range(0, len(ids), _UUID_BLOCK):
        block = ids[start : start + _UUID_BLOCK]
        if not _ids_match(block, _UUID_CLASSES):
            bad += [start + k for k, event_id in enumerate(block) if not _UUID.fullmatch(event_id)]
    return bad


def _lower(ids: Sequence[str]) -> Sequence[str]:
    """The ids in lower case."""
    joined = "\n".join(ids)
    if joined.count("\n") == len(ids) - 1:  # no id holds a newline: split undoes the join
        return joined.lower().split("\n")
    return [event_id.lower() for event_id in ids]


def _event_millis(times: Sequence[str], now_ms: int) -> tuple[list[int | None], set[str]]:
    """Epoch ms per event, each distinct text parsed once; and the texts that fail the contract."""
    lowest, highest = now_ms - _MAX_AGE_MS, now_ms + _MAX_SKEW_MS
    millis: dict[str, int | None] = {}
    bad = set()
    for text in set(times):
        moment = millis[text] = parse_event_time(text)
        if moment is None or not lowest <= moment <= highest:
            bad.add(text)
    return list(map(millis.__getitem__, times)), bad


def _positions(column: Sequence[Any], value: str) -> list[int]:
    """Every position of `value` in `column` (tuple.index runs in C)."""
    found = []
    start = 0
    try:
        while True:
            start = column.index(value, start) + 1
            found.append(start - 1)
    except ValueError:
        return found


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


def to_columns(events: Sequence[Event]) -> dict[str, list[Any]]:
    """Columnar form for `ClickHouseClient.insert` (event_time as epoch ms).

    One transposition in C (`zip`); a comprehension per column cost ~4,000 instructions an event.
    """
    if not events:
        return {name: [] for name in EVENT_COLUMNS}
    return dict(zip(EVENT_COLUMNS, map(list, zip(*events, strict=True)), strict=True))
