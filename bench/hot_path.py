"""The consumer's per-event hot path over a stored sample, run by `bench.instructions` under an
instruction counter: `python -m bench.hot_path <sample file> <now_ms> <mode>`.

Every mode starts the interpreter, imports the same modules and loads the same sample, so
subtracting the `load` run's count leaves the path alone:
- `load`: nothing more (the baseline);
- `consumer`: what the consumer does with each fetched chunk between the fetch and the insert:
  decode and validate it, add its events to a batch (which drops repeated event_ids), build
  the insert's columns;
- `reference`: the same with the reference decoder, `decode_python`, one message at a time.
"""

from __future__ import annotations

import sys
from typing import Any

import msgspec

from adpulse.events import Event, decode_many, decode_python
from consumers.batch import PartitionBatch, RecentIds
from consumers.gc_tuning import tune_for_ingest

# Messages per fetched chunk: `IngestConsumer.run` asks consume() for up to 10,000.
CHUNK = 10_000


def consumer_path(values: list[bytes], now_ms: int) -> dict[str, list[Any]]:
    """Decode and validate each chunk, add its events to a batch, build the insert's columns."""
    batch, recent = PartitionBatch("sample", 0, 0.0), RecentIds()
    for start in range(0, len(values), CHUNK):
        chunk = values[start : start + CHUNK]
        decoded = decode_many(chunk, now_ms=now_ms)
        # As `IngestConsumer._accept`: the events between two rejected messages at once, one
        # at a time only when an event_id repeats among them.
        at = 0
        for cut in [*sorted(decoded.rejected), len(chunk)]:
            if at < cut:
                size = sum(map(len, chunk[at:cut]))
                if not batch.add_rows(start + at, start + cut - 1, size, decoded, at, cut, recent):
                    for index in range(at, cut):
                        batch.add_row(start + index, len(chunk[index]), decoded, index, recent)
            at = cut + 1
    return batch.columns()


def reference_path(values: list[bytes], now_ms: int) -> dict[str, list[Any]]:
    """The same, one message at a time with the reference decoder."""
    batch, recent = PartitionBatch("sample", 0, 0.0), RecentIds()
    for offset, value in enumerate(values):
        result = decode_python(value, now_ms=now_ms)
        if type(result) is Event:
            batch.add_event(offset, result, len(value), recent)
    return batch.columns()


def main(argv: list[str]) -> None:
    path, now_ms, mode = argv
    with open(path, "rb") as file:
        values = msgspec.msgpack.decode(file.read(), type=list[bytes])
    tune_for_ingest()  # the collector as the consumer runs it
    if mode == "consumer":
        columns = consumer_path(values, int(now_ms))
    elif mode == "reference":
        columns = reference_path(values, int(now_ms))
    elif mode == "load":
        columns = {}
    else:
        raise SystemExit(f"unknown mode {mode!r}: use load, consumer or reference")
    # Freed here, inside the count, as the consumer frees a batch after its insert.
    del columns


if __name__ == "__main__":
    main(sys.argv[1:])
