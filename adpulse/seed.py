"""Seed history into the events table by generating rows inside ClickHouse.

Rows are drawn by `INSERT ... SELECT ... FROM numbers(offset, rows)` from the same tables the
Python sampler uses (`adpulse.traffic`), one statement per chunk. A chunk never spans two
hours: the diurnal weight is constant inside it, so uniform times within the chunk follow the
curve exactly, and each insert feeds the rollups a narrow, cheap-to-merge slice of time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any

from adpulse import names
from adpulse.clickhouse.client import ClickHouseClient
from adpulse.clickhouse.identifiers import validate_identifier
from adpulse.errors import ConfigError
from adpulse.events import EVENT_COLUMNS
from adpulse.traffic import DAY_MS, TrafficModel, campaigns, hour_slots, zipf_weights

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# The statement carries the model's tables as literals (~200 KB for the default model).
_SETTINGS = {"max_query_size": 4 * 1024 * 1024}

Progress = Callable[[int, int, int], None]  # (chunks done, chunks total, rows done)


@dataclass(frozen=True)
class Chunk:
    """Row numbers [offset, offset + rows), timed uniformly in [start_ms, start_ms + span_ms)."""

    offset: int
    rows: int
    start_ms: int
    span_ms: int


@dataclass(frozen=True)
class SeedSummary:
    """What a seed did: rows inserted over [start, end) by `chunks` INSERTs."""

    rows: int
    chunks: int
    seconds: float
    rows_per_second: float
    start: datetime
    end: datetime


def allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split `total` in proportion to `weights`, exactly (largest remainder)."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def plan_chunks(
    model: TrafficModel, events: int, start_ms: int, end_ms: int, chunk_rows: int
) -> list[Chunk]:
    """Chunks covering [start_ms, end_ms) in time order; rows per hour follow the diurnal curve."""
    slots = hour_slots(model, start_ms, end_ms)
    chunks: list[Chunk] = []
    offset = 0
    for slot, count in zip(slots, allocate(events, [s.weight for s in slots]), strict=True):
        if not count:
            # Few events over many hours, or a sliver of an hour at either end (its length,
            # so its share, depends on the minute the seed runs): nothing to write there.
            continue
        pieces = -(-count // chunk_rows)
        span = slot.end_ms - slot.start_ms
        edges = [slot.start_ms + span * j // pieces for j in range(pieces + 1)]
        lengths = [b - a for a, b in pairwise(edges)]
        for at, length, rows in zip(edges, lengths, allocate(count, lengths), strict=False):
            if rows:
                chunks.append(Chunk(offset, rows, at, length))
                offset += rows
    return chunks


def alias_table(weights: Sequence[float]) -> tuple[list[float], list[int]]:
    """Vose's alias method: pick slot i uniformly, keep it with keep[i], else take alias[i].

    SQL has no binary search, so this is how a row draws from a long table in O(1).
    """
    n, whole = len(weights), sum(weights)
    scaled = [w * n / whole for w in weights]
    keep, alias = [1.0] * n, list(range(n))
    small = [i for i, p in enumerate(scaled) if p < 1]
    large = [i for i, p in enumerate(scaled) if p >= 1]
    while small and large:
        s, big = small.pop(), large.pop()
        keep[s], alias[s] = scaled[s], big
        scaled[big] += scaled[s] - 1
        (small if scaled[big] < 1 else large).append(big)
    return [float(f"{k:.9g}") for k in keep], alias


def _array(values: Sequence[float | int]) -> str:
    return "[" + ",".join(repr(v) for v in values) + "]"


def _uniform(k: int) -> str:
    """A uniform in [0, 1) from the top 53 bits of a hash of (row number, seed, k)."""
    return f"bitShiftRight(cityHash64(number, {{seed:UInt64}}, {k}), 11) / 9007199254740992"


def _pick(name: str, weights: Sequence[float], k: int) -> list[str]:
    """WITH entries drawing `name` (1-based) from `weights` through an alias table."""
    keep, alias = alias_table(weights)
    return [
        f"{_array(keep)} AS {name}_keep",
        f"{_array([a + 1 for a in alias])} AS {name}_alias",
        f"cityHash64(number, {{seed:UInt64}}, {k}) AS {name}_hash",
        f"bitAnd({name}_hash, 4294967295) % {len(keep)} + 1 AS {name}_slot",
        f"if(bitShiftRight({name}_hash, 32) / 4294967296 < {name}_keep[{name}_slot], "
        f"{name}_slot, {name}_alias[{name}_slot]) AS {name}",
    ]


def _names(prefix: str, n: int) -> str:
    return "[" + ", ".join(f"{{{prefix}_{i}:String}}" for i in range(n)) + "]"


def name_params(model: TrafficModel) -> dict[str, str]:
    """Values of the country_i and device_i parameters of `seed_sql`."""
    params = {f"country_{i}": c for i, (c, _) in enumerate(model.countries)}
    return params | {f"device_{i}": d for i, (d, _) in enumerate(model.devices)}


@lru_cache(maxsize=8)
def seed_sql(model: TrafficModel, database: str) -> str:
    """The chunk statement: binds seed, run, offset, rows, start_ms, span_ms and `name_params`.

    Numbers from the model are literals; names (countries, devices) are bound parameters.
    """
    table = campaigns(model)
    jitter = float(model.price_jitter)
    with_ = [
        f"{_array(table.advertiser_id)} AS campaign_advertiser",
        f"{_array(table.impression_below)} AS campaign_impression_below",
        f"{_array(table.click_below)} AS campaign_click_below",
        f"{_array(table.cost_per_impression_micros)} AS campaign_cost_per_impression",
        f"{_array(table.conversion_value_micros)} AS campaign_conversion_value",
        f"{_names('country', len(model.countries))} AS country_names",
        f"{_names('device', len(model.devices))} AS device_names",
        *_pick("campaign", table.weight, 1),
        *_pick("ad", zipf_weights(model.ads_per_campaign, model.ad_zipf), 2),
        *_pick("publisher", zipf_weights(model.publishers, model.publisher_zipf), 3),
        *_pick("country", [w for _, w in model.countries], 4),
        *_pick("device", [w for _, w in model.devices], 5),
        f"{_uniform(6)} AS type_u",
        # 1, 2, 3 are the event_type Enum8 values (impression, click, conversion): numbers are
        # cheaper to compare and convert than names.
        "multiIf(type_u < campaign_impression_below[campaign], 1, "
        "type_u < campaign_click_below[campaign], 2, 3) AS kind",
        # High half unique per row number (x odd constant, then xor a per-run constant, is a
        # bijection mod 2^62) with the RFC 4122 variant bits; low half random with version 4.
        "bitOr(bitAnd(bitXor(number * 11400714819323198485, cityHash64({seed:UInt64}, "
        "{run:Int64})), 4611686018427387903), 9223372036854775808) AS id_unique",
        "bitOr(bitAnd(cityHash64(number, {seed:UInt64}, {run:Int64}), 18446744073709490175), "
        "16384) AS id_random",
    ]
    columns = [
        "reinterpretAsUUID(bitOr(bitShiftLeft(toUInt128(id_unique), 64), toUInt128(id_random)))",
        "kind",
        "fromUnixTimestamp64Milli({start_ms:Int64} + "
        "toInt64(cityHash64(number, {seed:UInt64}, 7) % {span_ms:UInt64}), 'UTC')",
        "campaign",
        "campaign * 1000 + ad",
        "campaign_advertiser[campaign]",
        "publisher",
        "country_names[country]",
        "device_names[device]",
        "if(kind = 1, toUInt64(round(campaign_cost_per_impression[campaign] * "
        f"({1 - jitter!r} + {2 * jitter!r} * {_uniform(8)}))), 0)",
        "if(kind = 3, toUInt64(round(campaign_conversion_value[campaign] * "
        f"(0.5 + {_uniform(9)}))), 0)",
        f"if({_uniform(10)} < {float(model.identified_share)!r}, "
        f"concat('u', toString(toUInt64({_uniform(11)} * {int(model.users)}))), '')",
    ]
    db = validate_identifier(database, what="database")
    return (
        f"INSERT INTO {db}.{names.EVENTS_TABLE} ({', '.join(EVENT_COLUMNS)})\n"
        "WITH\n    " + ",\n    ".join(with_) + "\n"
        "SELECT\n    " + ",\n    ".join(columns) + "\n"
        "FROM numbers({offset:UInt64}, {rows:UInt64})"
    )


def to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ConfigError(f"seed end {moment.isoformat()} has no timezone; pass an aware UTC time")
    return (moment - _EPOCH) // _MS


def seed(
    client: ClickHouseClient,
    model: TrafficModel,
    events: int,
    days: int,
    end: datetime,
    *,
    chunk_rows: int = 5_000_000,
    seed: int = 42,
    progress: Progress | None = None,
) -> SeedSummary:
    """Insert `events` rows timed over the `days` before `end` (never after it, never future).

    The same (model, seed, end) inserts the same rows; another `end` gets other event ids.
    """
    if events < 1 or not 1 <= days <= 366 or chunk_rows < 1:
        raise ConfigError(
            f"seed: events={events} and chunk_rows={chunk_rows} must be >= 1, "
            f"days={days} within 1..366"
        )
    end_ms = to_ms(end)
    if end_ms > to_ms(datetime.now(UTC)):
        raise ConfigError(f"seed end {end.isoformat()} is in the future; events never are")
    start_ms = end_ms - days * DAY_MS
    chunks = plan_chunks(model, events, start_ms, end_ms, chunk_rows)
    sql = seed_sql(model, client.database)
    fixed: dict[str, Any] = {"seed": seed, "run": end_ms, **name_params(model)}
    started = time.monotonic()
    done = 0
    for index, chunk in enumerate(chunks, start=1):
        params = {**fixed, "offset": chunk.offset, "rows": chunk.rows}
        params |= {"start_ms": chunk.start_ms, "span_ms": chunk.span_ms}
        client.command(sql, params, settings=_SETTINGS)
        done += chunk.rows
        if progress:
            progress(index, len(chunks), done)
    seconds = time.monotonic() - started
    return SeedSummary(
        rows=done,
        chunks=len(chunks),
        seconds=round(seconds, 3),
        rows_per_second=round(done / seconds) if seconds > 0 else 0.0,
        start=_EPOCH + start_ms * _MS,
        end=_EPOCH + end_ms * _MS,
    )
