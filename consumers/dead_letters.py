"""The dead-letter topic: original bytes and headers, plus headers that say why and where from."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from adpulse.errors import AdpulseError
from adpulse.kafka.client_config import kafka_config
from adpulse.settings import Settings
from consumers.batch import DeadLetter


class DeadLetterError(AdpulseError):
    """Dead letters could not be delivered; the batch is not committed and will be retried."""


class DeadLetterProducer:
    """Sends dead letters; `deliver` returns only when all are acknowledged by the broker."""

    def __init__(self, settings: Settings) -> None:
        from confluent_kafka import Producer

        self.topic = settings.dlq_topic
        self.source_topic = settings.events_topic
        self._errors: list[str] = []
        self._producer = Producer(
            kafka_config(settings, acks="all", **{"enable.idempotence": True, "linger.ms": 20})
        )

    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._errors.append(str(err))

    def deliver(self, partition: int, letters: list[DeadLetter], timeout: float = 10.0) -> None:
        if not letters:
            return
        rejected_at = datetime.now(UTC).isoformat(timespec="milliseconds").encode()
        for letter in letters:
            headers: list[tuple[str, str | bytes | None]] = [
                *letter.headers,
                ("adpulse.reason", letter.reason.encode()),
                ("adpulse.detail", letter.detail.encode()),
                ("adpulse.source.topic", self.source_topic.encode()),
                ("adpulse.source.partition", str(partition).encode()),
                ("adpulse.source.offset", str(letter.offset).encode()),
                ("adpulse.rejected_at", rejected_at),
            ]
            self._producer.produce(
                self.topic,
                value=letter.value,
                key=letter.key,
                headers=headers,
                on_delivery=self._on_delivery,
            )
            self._producer.poll(0)
        remaining = self._producer.flush(timeout)
        errors, self._errors = self._errors, []
        if remaining or errors:
            raise DeadLetterError(
                f"{remaining} dead letter(s) undelivered to {self.topic}"
                + (f": {errors[0]}" if errors else "")
            )

    def close(self) -> None:
        """Deliver what is queued (up to 5 s), then shut the client down: an idle producer
        left to the garbage collector keeps reconnecting to a broker that has stopped."""
        self._producer.flush(5)
        self._producer.close()
