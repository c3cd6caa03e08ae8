"""Reading the relayed history back from Kafka and walking its hash chains.

The domain topics are read read-committed from the beginning up to their end at the time of
reading, with a consumer assigned to every partition (no group, nothing committed). Each
aggregate's first copy of each version is kept (a re-sent batch repeats byte-identical messages,
which are counted, not faulted) and its chain is walked as it arrives: the hash recomputed from
the content, the version after the previous one (skipping versions the relay dead-lettered) and
``prev_hash`` pointing at the previous event's hash.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from omium.commands.verify._report import BreakKind, ChainBreak, Where
from omium.commands.verify.errors import HistoryUnavailableError
from omium.kernel.events import GENESIS_HASH, compute_hash
from omium.kernel.kafka import consumer_config
from omium.kernel.serde import AvroSerde, SerdeError
from omium.kernel.settings import KafkaSettings

RELAY_DLQ_GROUP = b"omium-relay"
"""``dlq.consumer_group`` of the relay's dead letters (stored events it could not encode)."""

FETCH_BATCH = 1000

PROCESSOR_SOURCE_HEADER = "omium.source"
"""Header of events a stream processor emitted itself (``streams.base``'s ``SOURCE_HEADER``)."""


@dataclass(frozen=True)
class PublishedEvent:
    """The first copy of one aggregate version on Kafka.

    Attributes:
        hash: Its ``hash`` field as published.
        digest: SHA-256 of the message value (tells a re-send from a different message).
        topic: Where it is.
        partition: Its partition.
        offset: Its offset.
    """

    hash: str
    digest: bytes
    topic: str
    partition: int
    offset: int


@dataclass
class KafkaChain:
    """One aggregate's chain as read from Kafka so far.

    Attributes:
        aggregate_id: The aggregate.
        events: First copies by version.
        head_version: Version of the last verified event (0: none yet).
        head_hash: Its hash.
        broken: A break was found; later events are collected but not walked.
        emitted_by: The stream processor that produced its first event (its ``omium.source``
            header), ``None`` for events the relay published from the event store. A processor's
            events (``VoteRejected``, ``PolicyViolated`` ...) are chained too but never stored.
    """

    aggregate_id: str
    events: dict[int, PublishedEvent] = field(default_factory=dict)
    head_version: int = 0
    head_hash: str = GENESIS_HASH
    broken: bool = False
    emitted_by: str | None = None


@dataclass
class KafkaHistory:
    """Everything read from the topics for one verification.

    Attributes:
        chains: Per aggregate id.
        breaks: The first break of each aggregate's chain, in the order found.
        duplicates: Byte-identical re-sends seen.
        dead_lettered: Per aggregate id, the versions the relay dead-lettered.
        messages: Messages read in scope (including duplicates).
    """

    chains: dict[str, KafkaChain] = field(default_factory=dict)
    breaks: list[ChainBreak] = field(default_factory=list)
    duplicates: int = 0
    dead_lettered: dict[str, set[int]] = field(default_factory=dict)
    messages: int = 0

    def events(self) -> int:
        """Distinct events read (first copies)."""
        return sum(len(chain.events) for chain in self.chains.values())


MessageFilter = Callable[[Message], bool]


class KafkaHistoryReader:
    """Reads domain topics and the relay's dead letters; walks every chain in scope.

    Args:
        kafka: Where the cluster is.
        serde: Decodes the Avro messages and re-encodes them for the hash.
        timeout_s: Longest the whole read may take before it is given up.
    """

    def __init__(self, kafka: KafkaSettings, serde: AvroSerde, *, timeout_s: float = 120.0) -> None:
        """Remember the cluster; nothing is opened until :meth:`read`."""
        self._kafka = kafka
        self._serde = serde
        self._timeout_s = timeout_s

    def read(
        self,
        topics: Sequence[str],
        *,
        dlq_topic: str | None,
        aggregate_ids: Iterable[str] | None = None,
        tenant_id: str | None = None,
    ) -> KafkaHistory:
        """Read the topics to their current end and walk the chains of the aggregates in scope.

        Args:
            topics: The domain topics the relay publishes to.
            dlq_topic: The dead-letter topic (gaps the relay explains there are not faults).
            aggregate_ids: Only these aggregates (message key); ``None``: every aggregate.
            tenant_id: Only this tenant's events; ``None``: every tenant.

        Raises:
            HistoryUnavailableError: Kafka cannot be read, or not to the end in time.
        """
        ids = None if aggregate_ids is None else {i.encode() for i in aggregate_ids}
        wanted = _scope_filter(ids, tenant_id)
        history = KafkaHistory()
        if dlq_topic is not None:
            for message in self._messages([dlq_topic]):
                _note_dead_letter(message, wanted, history)
        for message in self._messages(topics):
            if wanted(message):
                self._add(message, history, tenant_id)
        return history

    def _add(self, message: Message, history: KafkaHistory, tenant_id: str | None) -> None:
        history.messages += 1
        key = message.key()
        aggregate_id = key.decode("utf-8", "replace") if isinstance(key, bytes) else "?"
        value = message.value()
        raw = value if isinstance(value, bytes) else b""
        where = _location(message)
        try:
            event = self._serde.decode(raw)
        except SerdeError as exc:
            if tenant_id is not None and _header(message, "tenant_id") != tenant_id.encode():
                history.messages -= 1
                return  # whose it is cannot be told: never name it in a tenant's report
            chain = history.chains.setdefault(aggregate_id, KafkaChain(aggregate_id))
            _fail(history, chain, BreakKind.UNDECODABLE, None, "an Avro event", str(exc), where)
            return
        if tenant_id is not None and event.get("tenant_id") != tenant_id:
            history.messages -= 1
            return
        aggregate_id = str(event.get("aggregate_id"))
        if aggregate_id not in history.chains:
            source = _header(message, PROCESSOR_SOURCE_HEADER)
            emitted_by = None if source is None else source.decode("utf-8", "replace")
            history.chains[aggregate_id] = KafkaChain(aggregate_id, emitted_by=emitted_by)
        chain = history.chains[aggregate_id]
        version = event.get("aggregate_version")
        if not isinstance(version, int):
            _fail(history, chain, BreakKind.UNDECODABLE, None, "a version", repr(version), where)
            return
        digest = hashlib.sha256(raw).digest()
        first = chain.events.get(version)
        if first is not None:
            if first.digest == digest:
                history.duplicates += 1
            else:
                detail = (
                    f"a different message for a version already published at "
                    f"{first.topic}[{first.partition}]@{first.offset}"
                )
                found = str(event.get("hash"))
                _fail(
                    history, chain, BreakKind.DUPLICATE, version, first.hash, found, where, detail
                )
            return
        chain.events[version] = PublishedEvent(str(event.get("hash")), digest, *where)
        if not chain.broken:
            self._walk(event, version, chain, history, where)

    def _walk(
        self,
        event: dict[str, Any],
        version: int,
        chain: KafkaChain,
        history: KafkaHistory,
        where: tuple[str, int, int],
    ) -> None:
        stored_hash = str(event.get("hash"))
        try:
            recomputed = compute_hash(event, catalog=self._serde.catalog)
        except SerdeError as exc:
            _fail(history, chain, BreakKind.UNDECODABLE, version, "a valid event", str(exc), where)
            return
        if recomputed != stored_hash:
            detail = "the message's content was changed after it was hashed"
            _fail(
                history,
                chain,
                BreakKind.HASH_MISMATCH,
                version,
                recomputed,
                stored_hash,
                where,
                detail,
            )
            return
        skipped = history.dead_lettered.get(chain.aggregate_id, set())
        expected = chain.head_version + 1
        while expected in skipped:
            expected += 1
        if version != expected:
            detail = "an event is missing or out of order"
            _fail(
                history,
                chain,
                BreakKind.VERSION_GAP,
                version,
                f"version {expected}",
                f"version {version}",
                where,
                detail,
            )
            return
        prev_hash = event.get("prev_hash")
        if prev_hash != chain.head_hash:
            detail = "prev_hash does not point at the previous event's hash"
            _fail(
                history,
                chain,
                BreakKind.BROKEN_LINK,
                version,
                chain.head_hash or "''",
                str(prev_hash) or "''",
                where,
                detail,
            )
            return
        chain.head_version, chain.head_hash = version, stored_hash

    def _messages(self, topics: Sequence[str]) -> Iterable[Message]:
        """Every committed message of the topics, up to their end when the read started."""
        config = consumer_config(
            self._kafka,
            f"omium-verify-{uuid.uuid4().hex[:12]}",
            **{"enable.partition.eof": True, "isolation.level": "read_committed"},
        )
        consumer = Consumer(config)
        deadline = time.monotonic() + self._timeout_s
        try:
            partitions = self._partitions(consumer, topics)
            if not partitions:
                return
            consumer.assign(partitions)
            ended: set[tuple[str, int]] = set()
            while len(ended) < len(partitions):
                if time.monotonic() > deadline:
                    raise HistoryUnavailableError(
                        f"read {len(ended)} of {len(partitions)} partitions to the end "
                        f"in {self._timeout_s:.0f} s"
                    )
                for message in consumer.consume(FETCH_BATCH, 0.5):
                    error = message.error()
                    if error is None:
                        yield message
                    elif error.code() == KafkaError._PARTITION_EOF:  # noqa: SLF001
                        ended.add((str(message.topic()), int(message.partition() or 0)))
                    elif error.fatal() or not error.retriable():
                        raise HistoryUnavailableError(f"cannot read Kafka: {error}")
        except KafkaException as exc:
            raise HistoryUnavailableError(f"cannot read Kafka: {exc}") from exc
        finally:
            consumer.close()

    def _partitions(self, consumer: Consumer, topics: Sequence[str]) -> list[TopicPartition]:
        metadata = consumer.list_topics(timeout=10)
        partitions = []
        for topic in topics:
            described = metadata.topics.get(topic)
            if described is None or described.error is not None:
                continue  # never created: nothing was published there
            partitions += [
                TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(described.partitions)
            ]
        return partitions


def _scope_filter(ids: set[bytes] | None, tenant_id: str | None) -> MessageFilter:
    """A cheap test on key and headers; the tenant is confirmed on the decoded event."""
    tenant = None if tenant_id is None else tenant_id.encode()

    def wanted(message: Message) -> bool:
        if ids is not None and message.key() not in ids:
            return False
        if tenant is not None:
            header = _header(message, "tenant_id")
            return header is None or header == tenant
        return True

    return wanted


def _header(message: Message, name: str) -> bytes | None:
    for header in message.headers() or []:
        if header[0] == name:
            value = header[1]
            return value if isinstance(value, bytes) else b""
    return None


def _note_dead_letter(message: Message, wanted: MessageFilter, history: KafkaHistory) -> None:
    """Record a relay dead letter's aggregate version (other consumers' letters are skipped)."""
    if _header(message, "dlq.consumer_group") != RELAY_DLQ_GROUP:
        return
    if message.key() is not None and not wanted(message):
        return
    try:
        stored = json.loads(message.value() or b"")
        aggregate_id, version = str(stored["originator_id"]), int(stored["originator_version"])
    except (ValueError, KeyError, TypeError):
        return  # not one of the relay's letters after all: it explains no gap
    history.dead_lettered.setdefault(aggregate_id, set()).add(version)


def _location(message: Message) -> tuple[str, int, int]:
    return str(message.topic()), int(message.partition() or 0), int(message.offset() or 0)


def _fail(
    history: KafkaHistory,
    chain: KafkaChain,
    kind: BreakKind,
    version: int | None,
    expected: str,
    found: str,
    where: tuple[str, int, int],
    detail: str = "",
) -> None:
    """Record the chain's first break; later ones of the same chain are consequences."""
    if chain.broken:
        return
    chain.broken = True
    topic, partition, offset = where
    history.breaks.append(
        ChainBreak(
            where=Where.KAFKA,
            kind=kind,
            aggregate_id=chain.aggregate_id,
            aggregate_version=version,
            expected=expected,
            found=found,
            detail=detail or f"the message cannot be {'read' if version is None else 'checked'}",
            topic=topic,
            partition=partition,
            offset=offset,
        )
    )
