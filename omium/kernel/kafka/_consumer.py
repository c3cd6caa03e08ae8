"""A consumer of Omium events with manual commits and dead-lettering of bad messages."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from omium.kernel.errors import OmiumError, PersistenceError
from omium.kernel.kafka._codec import EventCodec
from omium.kernel.kafka._dlq import DeadLetter, DeadLetterWriter
from omium.kernel.kafka._producer import EventProducer
from omium.kernel.settings import KafkaSettings


@dataclass(frozen=True)
class ConsumedEvent:
    """A decoded event and where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    event: dict[str, Any]
    raw: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


EventHandler = Callable[[ConsumedEvent], None]


def poll_batch(consumer: Consumer, max_messages: int, timeout_s: float) -> list[Message]:
    """Up to ``max_messages`` messages, returning as soon as the first one arrives.

    librdkafka's ``consume(n, timeout)`` waits until it has ``n`` messages or the timeout ends,
    so a lone event waits out the whole poll window (measured: 500 ms of a live event's 600 ms
    from commit to browser). Here the wait ends on the first message; what else is already
    fetched is then drained without waiting.
    """
    first = consumer.poll(timeout_s)
    if first is None:
        return []
    if max_messages <= 1:
        return [first]
    return [first, *consumer.consume(max_messages - 1, 0)]


# How often a group member refreshes its metadata (librdkafka's default: 5 minutes). A topic it
# subscribed to before its broker listed it joins the assignment only at a refresh; a run then
# waited minutes for its first step (a stream processor's internal topic, created a moment
# before on a three-broker cluster). A metadata request every 10 s costs nothing next to that.
METADATA_REFRESH_MS = 10_000


def consumer_config(kafka: KafkaSettings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """librdkafka settings: offsets are committed by hand, only after work is done."""
    config: dict[str, Any] = {
        **kafka.client_config(),
        "client.id": f"{kafka.client_id}-{group_id}",
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # Only read what committed transactions wrote (the stream processors are transactional).
        "isolation.level": "read_committed",
        "topic.metadata.refresh.interval.ms": METADATA_REFRESH_MS,
    }
    config.update(overrides)
    return config


class EventConsumer:
    """Reads events in batches; undecodable messages go to the DLQ and the consumer moves on.

    Offsets advance only on ``commit``, which first makes every dead letter durable, so a crash
    between poll and commit redelivers rather than loses. Handlers must therefore be idempotent.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        codec: EventCodec,
        *,
        group_id: str,
        topics: Iterable[str],
        **overrides: Any,
    ) -> None:
        self._group_id = group_id
        self._codec = codec
        self._consumer = Consumer(consumer_config(kafka, group_id, **overrides))
        self._dlq_producer = EventProducer(kafka, codec)
        self._dlq = DeadLetterWriter(kafka, self._dlq_producer)
        self._pending: dict[tuple[str, int], int] = {}
        self._consumer.subscribe(list(topics), on_revoke=self._on_revoke)

    @property
    def group_id(self) -> str:
        """The consumer group."""
        return self._group_id

    def poll(self, *, max_messages: int = 500, timeout_s: float = 1.0) -> list[ConsumedEvent]:
        """Fetch up to ``max_messages``; decoded events are returned, bad ones dead-lettered."""
        try:
            messages = poll_batch(self._consumer, max_messages, timeout_s)
        except KafkaException as exc:
            raise PersistenceError(f"consume failed for group {self._group_id}: {exc}") from exc
        events = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise PersistenceError(f"fatal consumer error: {error}")
                continue  # informational (e.g. partition EOF); no offset to track
            self._track(message)
            consumed = self._decode(message)
            if consumed is not None:
                events.append(consumed)
        return events

    def dead_letter(self, consumed: ConsumedEvent, error: BaseException) -> None:
        """Send a decoded event that could not be handled to the DLQ, with the error as reason."""
        self._dlq.send(
            DeadLetter(
                reason=str(error) or type(error).__name__,
                error_type=type(error).__name__,
                source_topic=consumed.topic,
                source_partition=consumed.partition,
                source_offset=consumed.offset,
                key=consumed.key,
                value=consumed.raw,
                consumer_group=self._group_id,
                original_headers=consumed.headers,
            )
        )

    def process(
        self, handler: EventHandler, *, max_messages: int = 500, timeout_s: float = 1.0
    ) -> int:
        """Poll one batch, hand each event to ``handler``, then commit; return events handled.

        A handler that raises ``PersistenceError`` (a store is down) stops the batch without a
        commit, so the batch is redelivered; any other error dead-letters that one event.
        """
        events = self.poll(max_messages=max_messages, timeout_s=timeout_s)
        for consumed in events:
            try:
                handler(consumed)
            except PersistenceError:
                raise
            except Exception as exc:
                self.dead_letter(consumed, exc)
        self.commit()
        return len(events)

    def commit(self) -> None:
        """Make dead letters durable, then commit everything polled so far."""
        if not self._pending:
            return
        self._dlq.flush()
        offsets = [
            TopicPartition(topic, partition, offset + 1)
            for (topic, partition), offset in self._pending.items()
        ]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise PersistenceError(f"commit failed for group {self._group_id}: {exc}") from exc
        self._pending.clear()

    def close(self) -> None:
        """Leave the group (uncommitted work is redelivered to the next owner)."""
        try:
            self._dlq.flush()
        finally:
            self._consumer.close()

    def __enter__(self) -> EventConsumer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _track(self, message: Message) -> None:
        topic, partition, offset = _where(message)
        self._pending[(topic, partition)] = max(self._pending.get((topic, partition), -1), offset)

    def _decode(self, message: Message) -> ConsumedEvent | None:
        raw = message.value() or b""
        topic, partition, offset = _where(message)
        headers = tuple(
            (str(header[0]), header[1] if isinstance(header[1], bytes) else b"")
            for header in message.headers() or ()
        )
        try:
            event = self._codec.decode(raw)
        except OmiumError as exc:
            self._dlq.send(
                DeadLetter(
                    reason=str(exc),
                    error_type=type(exc).__name__,
                    source_topic=topic,
                    source_partition=partition,
                    source_offset=offset,
                    key=message.key(),
                    value=raw,
                    consumer_group=self._group_id,
                    original_headers=headers,
                )
            )
            return None
        return ConsumedEvent(
            topic=topic,
            partition=partition,
            offset=offset,
            key=message.key(),
            event=event,
            raw=raw,
            headers=headers,
        )

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Work polled from a partition we lose is redelivered to its next owner.
        for tp in partitions:
            self._pending.pop((tp.topic, tp.partition), None)


def _where(message: Message) -> tuple[str, int, int]:
    """Topic, partition and offset of a consumed message (set on every message without error)."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None and partition is not None and offset is not None, message
    return topic, partition, offset
