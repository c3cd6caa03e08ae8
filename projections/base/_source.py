"""Where a projection's events come from: a Kafka consumer that resumes from the store's offsets.

The kernel's ``EventConsumer`` resumes from the consumer group's committed offsets. A projection
whose store keeps offsets must resume from *those* (they are committed with the rows), and a
replay must read from the beginning or from a point in time without a group at all, so the
source builds its own ``Consumer``; decoding and dead-lettering are the kernel's (``EventCodec``,
``DeadLetterWriter``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from omium.kernel.errors import OmiumError, PersistenceError
from omium.kernel.kafka import (
    ConsumedEvent,
    DeadLetter,
    DeadLetterWriter,
    EventCodec,
    EventProducer,
    consumer_config,
    poll_batch,
)
from omium.kernel.settings import KafkaSettings
from omium.projections.base.errors import TopicPartition as TP

StoredOffsets = Callable[[], Mapping[TP, int]]

# ListOffsets' special timestamps: the end (last stable offset under read_committed), the start.
_LATEST = -1
_EARLIEST = -2


class EventSource:
    """Polls decoded events; undecodable messages go to the DLQ and count as consumed.

    Tracks, per partition, the next offset after everything polled since the last flush
    (``batch_offsets``) and the offsets it believes the store holds (``expected``).
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        codec: EventCodec,
        *,
        group_id: str,
        stored_offsets: StoredOffsets | None = None,
        **overrides: Any,
    ) -> None:
        self._group_id = group_id
        self._codec = codec
        self._stored_offsets = stored_offsets
        self._consumer = Consumer(consumer_config(kafka, group_id, **overrides))
        self._dlq_producer = EventProducer(kafka, codec)
        self._dlq = DeadLetterWriter(kafka, self._dlq_producer)
        self._pending: dict[TP, int] = {}
        self._expected: dict[TP, int | None] = {}
        self._end: dict[TP, int] = {}
        self._start: dict[TP, int] = {}
        self._closed = False

    # ------------------------------------------------------------------ construction

    @classmethod
    def live(
        cls,
        kafka: KafkaSettings,
        codec: EventCodec,
        *,
        group_id: str,
        topics: Iterable[str],
        stored_offsets: StoredOffsets | None = None,
        **overrides: Any,
    ) -> EventSource:
        """A member of ``group_id`` on ``topics``; with ``stored_offsets`` it resumes from them.

        The session timeout is 10 s (librdkafka's default is 45 s): a projection killed without
        leaving the group holds its partitions until then, so a restart waits that long.
        """
        overrides = {"session.timeout.ms": 10_000, "heartbeat.interval.ms": 2_000, **overrides}
        source = cls(kafka, codec, group_id=group_id, stored_offsets=stored_offsets, **overrides)
        source._consumer.subscribe(
            list(topics), on_assign=source._on_assign, on_revoke=source._on_revoke
        )
        return source

    @classmethod
    def replay(
        cls,
        kafka: KafkaSettings,
        codec: EventCodec,
        *,
        topics: Iterable[str],
        since: datetime | None = None,
        partitions: Iterable[TP] | None = None,
        timeout_s: float = 15.0,
        **overrides: Any,
    ) -> EventSource:
        """Every partition of ``topics`` (or only ``partitions`` of them) from the beginning
        (or from ``since``), without a group.

        The end offsets (high watermarks) are taken now; ``caught_up`` says when they are reached.
        """
        group = f"{kafka.topic_prefix}.replay.{uuid.uuid4().hex[:8]}"
        source = cls(kafka, codec, group_id=group, **overrides)
        wanted = None if partitions is None else set(partitions)
        chosen = [
            tp
            for tp in source._partitions(topics, timeout_s)
            if wanted is None or (tp.topic, tp.partition) in wanted
        ]
        starts = source._start_offsets(chosen, since, timeout_s)
        source._start = {(tp.topic, tp.partition): tp.offset for tp in starts}
        source._consumer.assign(starts)
        source.refresh_end_offsets(timeout_s=timeout_s)
        return source

    # ------------------------------------------------------------------ reading

    @property
    def group_id(self) -> str:
        """The consumer group (a throwaway one for a replay)."""
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
                continue
            topic, partition, offset = _where(message)
            key = (topic, partition)
            self._pending[key] = max(self._pending.get(key, -1), offset + 1)
            consumed = self._decode(message)
            if consumed is not None:
                events.append(consumed)
        return events

    def dead_letter(self, consumed: ConsumedEvent, error: BaseException) -> None:
        """Send an event that could not be projected to the DLQ, with the error as reason."""
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

    def flush_dead_letters(self) -> None:
        """Make every dead letter durable (before offsets move past them)."""
        self._dlq.flush()

    # ------------------------------------------------------------------ offsets

    def batch_offsets(self) -> dict[TP, int]:
        """Next offset per partition after everything polled since the last ``mark_flushed``."""
        return dict(self._pending)

    def expected(self, partitions: Iterable[TP]) -> dict[TP, int | None]:
        """The offsets this source believes the store holds for ``partitions``."""
        return {tp: self._expected.get(tp) for tp in partitions}

    def mark_flushed(self, offsets: Mapping[TP, int]) -> None:
        """The store now holds ``offsets``: forget the batch."""
        self._expected.update(offsets)
        self._pending.clear()

    def commit(self, offsets: Mapping[TP, int], *, asynchronous: bool = False) -> None:
        """Commit ``offsets`` to the consumer group (monitoring, or the resume point itself)."""
        if not offsets:
            return
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            if asynchronous:
                self._consumer.commit(offsets=tps, asynchronous=True)
            else:
                self._consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as exc:
            raise PersistenceError(f"commit failed for group {self._group_id}: {exc}") from exc

    def rewind(self, stored: Mapping[TP, int]) -> None:
        """Seek every assigned partition back to the store's offsets (from the start if none)."""
        self._pending.clear()
        for tp in self._assignment():
            key = (tp.topic, tp.partition)
            self._expected[key] = stored.get(key)
            offset = stored.get(key, OFFSET_BEGINNING)
            try:
                self._consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            except KafkaException as exc:
                raise PersistenceError(f"cannot seek {tp.topic}[{tp.partition}]: {exc}") from exc

    def rewind_to_committed(self) -> None:
        """Seek every assigned partition back to the group's committed offsets."""
        self._pending.clear()
        assigned = self._assignment()
        if not assigned:
            return
        try:
            committed = self._consumer.committed(assigned, timeout=10.0)
            for tp in committed:
                offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                self._consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
        except KafkaException as exc:
            raise PersistenceError(f"cannot rewind group {self._group_id}: {exc}") from exc

    # ------------------------------------------------------------------ progress

    def refresh_end_offsets(self, *, timeout_s: float = 10.0) -> dict[TP, int]:
        """Take the current end (high watermark) of every assigned partition as the goal."""
        assigned = self._assignment()
        ends = self._list_offsets(assigned, _LATEST, timeout_s) if assigned else {}
        self._end = ends
        return dict(ends)

    def positions(self) -> dict[TP, int]:
        """The next offset the consumer will read, per assigned partition (-1: not started)."""
        assigned = self._assignment()
        if not assigned:
            return {}
        try:
            current = self._consumer.position(assigned)
        except KafkaException as exc:
            raise PersistenceError(f"cannot read positions: {exc}") from exc
        return {(tp.topic, tp.partition): tp.offset for tp in current}

    def lag(self) -> int:
        """Messages between the positions and the end offsets of the last ``refresh``."""
        positions = self.positions()
        total = 0
        for tp, end in self._end.items():
            position = positions.get(tp, -1)
            # An untouched partition has no position yet: it is where reading starts.
            if position < 0:
                position = self._start.get(tp, 0)
            total += max(0, end - position)
        return total

    def caught_up(self) -> bool:
        """Whether every partition reached the end offsets of the last ``refresh``."""
        return self.lag() == 0

    def close(self) -> None:
        """Leave the group; make dead letters durable first (a second call does nothing)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._dlq.flush()
        finally:
            self._consumer.close()

    # ------------------------------------------------------------------ internals

    def _assignment(self) -> list[TopicPartition]:
        try:
            return list(self._consumer.assignment())
        except KafkaException as exc:
            raise PersistenceError(f"cannot read the assignment: {exc}") from exc

    def _partitions(self, topics: Iterable[str], timeout_s: float) -> list[TopicPartition]:
        partitions = []
        for topic in topics:
            try:
                metadata = self._consumer.list_topics(topic, timeout=timeout_s).topics[topic]
            except KafkaException as exc:
                raise PersistenceError(f"cannot list partitions of {topic}: {exc}") from exc
            if metadata.error is not None:
                raise PersistenceError(f"topic {topic}: {metadata.error}")
            partitions += [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
        return partitions

    def _start_offsets(
        self, partitions: list[TopicPartition], since: datetime | None, timeout_s: float
    ) -> list[TopicPartition]:
        """Numeric start offsets: the low watermark, or the first offset at/after ``since``."""
        if since is None:
            lows = self._list_offsets(partitions, _EARLIEST, timeout_s)
            return [TopicPartition(t, p, o) for (t, p), o in lows.items()]
        found = self._list_offsets(partitions, int(since.timestamp() * 1000), timeout_s)
        # No message at or after ``since``: start at the end (nothing to replay there).
        missing = [TopicPartition(t, p) for (t, p), o in found.items() if o < 0]
        ends = self._list_offsets(missing, _LATEST, timeout_s) if missing else {}
        return [TopicPartition(t, p, o if o >= 0 else ends[(t, p)]) for (t, p), o in found.items()]

    def _list_offsets(
        self, partitions: list[TopicPartition], when: int, timeout_s: float
    ) -> dict[TP, int]:
        """Offsets of all ``partitions`` at a time (or ``_EARLIEST``/``_LATEST``), in one call."""
        query = [TopicPartition(tp.topic, tp.partition, when) for tp in partitions]
        try:
            found = self._consumer.offsets_for_times(query, timeout=timeout_s)
        except KafkaException as exc:
            raise PersistenceError(f"cannot list offsets: {exc}") from exc
        return {(tp.topic, tp.partition): int(tp.offset) for tp in found}

    def _decode(self, message: Message) -> ConsumedEvent | None:
        raw = message.value() or b""
        headers = _headers(message)
        topic, partition, offset = _where(message)
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

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._stored_offsets is None:
            return  # resume from the group's committed offsets
        stored = self._stored_offsets()
        for tp in partitions:
            key = (tp.topic, tp.partition)
            self._expected[key] = stored.get(key)
            # The store is authoritative: no stored offset means nothing applied yet.
            tp.offset = stored.get(key, OFFSET_BEGINNING)
        consumer.assign(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Work polled from a partition we lose is redelivered to its next owner.
        for tp in partitions:
            self._pending.pop((tp.topic, tp.partition), None)
            self._expected.pop((tp.topic, tp.partition), None)


def _where(message: Message) -> tuple[str, int, int]:
    """Topic, partition and offset of a fetched message (always set on one without error)."""
    return str(message.topic()), int(message.partition() or 0), int(message.offset() or 0)


def _headers(message: Message) -> tuple[tuple[str, bytes], ...]:
    found: Any = message.headers() or ()
    return tuple((str(k), v if isinstance(v, bytes) else str(v or "").encode()) for k, v in found)
