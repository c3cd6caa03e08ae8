"""The dead-letter writer: a message that cannot be decoded or handled is kept, never dropped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from omium.kernel.kafka._producer import EventProducer, Headers
from omium.kernel.kafka._topics import Area, topic_name
from omium.kernel.settings import KafkaSettings

# Header names on every dead letter; the value and key are the original message's bytes.
REASON = "dlq.reason"
ERROR_TYPE = "dlq.error_type"
SOURCE_TOPIC = "dlq.source_topic"
SOURCE_PARTITION = "dlq.source_partition"
SOURCE_OFFSET = "dlq.source_offset"
CONSUMER_GROUP = "dlq.consumer_group"
FAILED_AT = "dlq.failed_at"


@dataclass(frozen=True)
class DeadLetter:
    """Why and where a message failed, and its original bytes."""

    reason: str
    error_type: str
    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None
    value: bytes | None
    consumer_group: str = ""
    original_headers: Headers = ()

    def headers(self, failed_at: datetime | None = None) -> list[tuple[str, bytes]]:
        """The original headers followed by the DLQ's own."""
        when = (failed_at or datetime.now(UTC)).isoformat()
        return [
            *self.original_headers,
            (REASON, self.reason.encode()),
            (ERROR_TYPE, self.error_type.encode()),
            (SOURCE_TOPIC, self.source_topic.encode()),
            (SOURCE_PARTITION, str(self.source_partition).encode()),
            (SOURCE_OFFSET, str(self.source_offset).encode()),
            (CONSUMER_GROUP, self.consumer_group.encode()),
            (FAILED_AT, when.encode()),
        ]


class DeadLetterWriter:
    """Writes dead letters to ``<prefix>.dlq`` with the same idempotent producer settings."""

    def __init__(self, kafka: KafkaSettings, producer: EventProducer) -> None:
        self._topic = topic_name(kafka, Area.DLQ)
        self._producer = producer

    @property
    def topic(self) -> str:
        """The DLQ topic name."""
        return self._topic

    def send(self, letter: DeadLetter) -> None:
        """Queue one dead letter; it is durable once ``flush`` returns."""
        key = letter.key.decode(errors="replace") if letter.key is not None else None
        self._producer.send(
            self._topic, key=key, value=letter.value or b"", headers=letter.headers()
        )

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every queued dead letter is acknowledged."""
        self._producer.flush(timeout_s)
