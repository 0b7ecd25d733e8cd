"""The write-ahead record of in-flight batches, in ClickHouse (`ingest_state`)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from adpulse import names
from adpulse.clickhouse.client import ClickHouseClient


@dataclass(frozen=True)
class InFlight:
    """The last batch a consumer started inserting for a partition."""

    first_offset: int
    last_offset: int
    token: str


class IngestState:
    """Reads and writes `ingest_state`. Each write replaces the partition's previous record."""

    def __init__(self, client: ClickHouseClient, consumer_name: str) -> None:
        self.client = client
        self.consumer_name = consumer_name

    def record(self, topic: str, partition: int, first: int, last: int, token: str) -> None:
        """Durably note the batch about to be inserted. Must return before the insert starts."""
        self.client.insert(
            names.INGEST_STATE_TABLE,
            {
                "key": [f"{topic}/{partition}"],
                "topic": [topic],
                "partition": [partition],
                "first_offset": [first],
                "last_offset": [last],
                "token": [token],
                "consumer": [self.consumer_name],
                "updated_at": [int(time.time() * 1000)],
            },
        )

    def in_flight(self, topic: str, partitions: list[int]) -> dict[int, InFlight]:
        if not partitions:
            return {}
        rows = self.client.query(
            f"SELECT partition, first_offset, last_offset, token "
            f"FROM {self.client.database}.{names.INGEST_STATE_TABLE} "
            "WHERE key IN {keys:Array(String)}",
            {"keys": [f"{topic}/{p}" for p in partitions]},
        )
        return {int(p): InFlight(int(a), int(b), t) for p, a, b, t in rows}
