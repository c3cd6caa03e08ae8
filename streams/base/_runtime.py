"""The transactional consume-process-produce loop that runs a :class:`Processor`.

Each loop turn polls a batch and opens one Kafka transaction holding everything the batch
caused: output events, dead letters, the state tables' changelog records and the consumed
offsets (``send_offsets_to_transaction``). Either all of it becomes visible to ``read_committed``
readers or none of it does. A crash before the commit leaves an open transaction that the broker
aborts (at once when the instance restarts under the same transactional id, which fences the dead
one; after ``transaction_timeout_ms`` otherwise), and the batch is processed again from committed
state: the local state copies are rebuilt from the changelogs on every assignment.

A transaction that fails is aborted when Kafka says it can be, and the batch is processed again.
When it cannot be (the producer was fenced, e.g. because the process was paused past
``transaction_timeout_ms`` and the broker aborted its transaction; a fatal producer error) or a
transactional call outlives its deadline (librdkafka can hang in ``send_offsets_to_transaction``
after a broker dies, see :mod:`omium.kernel.kafka._deadline`), the runtime recovers in process:
a new producer with the same transactional id fences the old one and resolves its transaction
(committed or aborted, never half), every owned partition's state is restored from its changelog
again and the consumer goes back to the committed offsets, exactly as after a rebalance.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import structlog
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from omium.kernel.errors import OmiumError, PersistenceError
from omium.kernel.health import HealthBeacon, consumer_lag
from omium.kernel.kafka import (
    METADATA_REFRESH_MS,
    DeadLetter,
    DeadlineCalls,
    TopicSpec,
    TransactionStalledError,
    ensure_topics,
    poll_batch,
    topic_name,
)
from omium.kernel.retry import retrying
from omium.kernel.serde import AvroSerde
from omium.streams.base._config import ProcessorConfig
from omium.streams.base._context import Context, Output, Source
from omium.streams.base._processor import Processor
from omium.streams.base._state import StateTable
from omium.streams.errors import StreamsError

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]

# librdkafka's local "unknown partition/topic" (-190, -188) and the broker's (3): a topic created
# a moment ago that a new client's metadata does not list yet.
# A topic created a moment ago: unknown to this client's metadata, or its leader not elected yet.
_UNKNOWN_TOPIC_CODES = frozenset(
    {
        -190,  # _UNKNOWN_PARTITION
        -188,  # _UNKNOWN_TOPIC
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
    }
)

# The timeout handed to librdkafka's transactional calls, and how much longer the runtime waits
# for one before it gives up on the producer (librdkafka may not honour its own timeout).
_TXN_CALL_TIMEOUT_S = 30.0
_TXN_DEADLINE_MARGIN_S = 15.0
# A new producer's init_transactions is tried this many times (about 5 minutes with the broker
# gone) before the runtime gives up and the process exits.
_REBUILD_ATTEMPTS = 12


def _utcnow() -> datetime:
    return datetime.now(UTC)


class StreamRuntime:
    """Runs one processor instance: group membership, state restore, transactions, timers.

    Args:
        processor: What to do with each event.
        config: Group, transactional id, state folder and timing.
        serde: Decodes inputs and encodes outputs.
        clock: Processing time, for timers (tests may move it).
        health: Where this instance's heartbeat goes (lag, partitions, last batch), written
            from the loop itself, so a loop that hangs stops beating.
    """

    def __init__(
        self,
        processor: Processor,
        config: ProcessorConfig,
        *,
        serde: AvroSerde,
        clock: Clock = _utcnow,
        health: HealthBeacon | None = None,
    ) -> None:
        """Prepare the runtime; :meth:`start` connects to Kafka."""
        self.processor = processor
        self.health = health
        self._last_batch_at: datetime | None = None
        self.config = config
        self._serde = serde
        self._clock = clock
        self.tables = {
            name: StateTable(
                name,
                changelog=config.internal_topic(f"{name}-changelog"),
                directory=config.table_dir(name),
            )
            for name in processor.tables
        }
        self._internal_inputs = {config.internal_topic(s) for s in processor.internal_inputs()}
        self._owned: set[int] = set()
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        self._last_tick = 0.0
        self._calls = DeadlineCalls(f"streams.{config.app_id}")
        # events: input messages whose offsets were committed (dead letters included).
        # producer_rebuilds: producers replaced after a fatal, fenced or stuck transaction.
        # poll_ms / commit_ms: wall time waiting in polls and in transactions (begin to commit),
        # so an instance that is not busy shows what it waits on.
        self.stats = {
            "events": 0,
            "outputs": 0,
            "dead_letters": 0,
            "transactions": 0,
            "aborts": 0,
            "producer_rebuilds": 0,
            "poll_ms": 0,
            "commit_ms": 0,
        }

    @property
    def owned_partitions(self) -> list[int]:
        """The input partitions this instance holds now."""
        return sorted(self._owned)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Create topics, fence any predecessor, and join the consumer group."""
        self._ensure_topics()
        self._producer = self._new_producer(attempts=1)
        self._consumer = Consumer(self._consumer_config())
        topics = [self.config.topic(area) for area in self.processor.input_areas()]
        topics += [self.config.internal_topic(s) for s in self.processor.internal_inputs()]
        self._consumer.subscribe(
            topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
        )

    def close(self) -> None:
        """Leave the group and release state (nothing uncommitted is kept)."""
        if self.health is not None and self._consumer is not None:
            self.health.beat(**self._health_report(), stopped=True)
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        for partition in list(self._owned):
            self._release(partition)
        for table in self.tables.values():
            table.close()
        self.processor.close()
        self._producer = None
        self._calls.close()

    def run(self, stop: threading.Event, *, idle_sleep_s: float = 0.0) -> None:
        """Process until ``stop`` is set (then leave the group cleanly)."""
        self.start()
        try:
            while not stop.is_set():
                if self.run_once() == 0 and idle_sleep_s:
                    time.sleep(idle_sleep_s)
        finally:
            self.close()

    # ------------------------------------------------------------------ one turn

    def run_once(self) -> int:
        """Poll one batch and process it in one transaction; return messages handled."""
        consumer, _ = self._require()
        self.processor.poll_side_inputs()
        polled_at = time.perf_counter()
        messages = poll_batch(consumer, self.config.max_batch, self.config.poll_timeout_s)
        self.stats["poll_ms"] += round((time.perf_counter() - polled_at) * 1000)
        outputs: list[Output] = []
        offsets: dict[tuple[str, int], int] = {}
        handled = 0
        retry_from: dict[tuple[str, int], int] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                self._check_fatal(error)
                continue
            topic, partition, offset = _where(message)
            tp = (topic, partition)
            if tp in retry_from:
                continue  # an earlier message of this partition must be retried first
            try:
                outputs += self._handle(message)
            except PersistenceError as exc:
                log.warning(
                    "runtime.store_unavailable",
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    error=str(exc),
                )
                retry_from[tp] = offset
                continue
            offsets[tp] = offset + 1
            handled += 1
        # Timers wait until the consumer has caught up, so a backlog of events that happened
        # before a deadline is processed before the deadline fires.
        if len(messages) < self.config.max_batch:
            outputs += self._maybe_tick()
        self._commit(outputs, offsets, handled)
        if handled:
            self._last_batch_at = datetime.now(UTC)
        if self.health is not None:
            self.health.maybe_beat(self._health_report)
        for (topic, partition), offset in retry_from.items():
            consumer.seek(TopicPartition(topic, partition, offset))
        if retry_from:
            time.sleep(1.0)
        return handled

    def _health_report(self) -> dict[str, Any]:
        lag, _ = consumer_lag(self._consumer) if self._consumer is not None else (None, ())
        return {
            "lag": lag,
            "last_batch_at": self._last_batch_at,
            "events": self.stats["events"],
            "partitions": self.owned_partitions,
            "details": {k: v for k, v in self.stats.items() if k != "events"},
        }

    def _handle(self, message: Message) -> list[Output]:
        source = Source(*_where(message), message.key())
        raw = message.value() or b""
        try:
            event = self._decode(source.topic, raw)
        except (OmiumError, ValueError) as exc:
            return [self._dead_letter(message, exc)]
        ctx = self._context(source.partition, event=event, source=source)
        try:
            self.processor.handle(ctx)
        except PersistenceError:
            raise
        except Exception as exc:  # a bug or bad input: keep the message, tell why, move on
            log.exception("runtime.handler_failed", topic=source.topic, offset=source.offset)
            return [self._dead_letter(message, exc)]
        ctx.apply_to(self.tables)
        return ctx.outputs

    def _decode(self, topic: str, raw: bytes) -> dict[str, Any]:
        # Internal topics carry the processor's own JSON records, not Omium events.
        if topic in self._internal_inputs:
            record = json.loads(raw)
            if not isinstance(record, dict):
                raise ValueError("an internal record must be a JSON object")
            return record
        return self._serde.decode(raw)

    def _maybe_tick(self) -> list[Output]:
        if time.monotonic() - self._last_tick < self.config.tick_interval_s:
            return []
        self._last_tick = time.monotonic()
        outputs: list[Output] = []
        for partition in sorted(self._owned):
            ctx = self._context(partition)
            self.processor.on_tick(ctx)
            ctx.apply_to(self.tables)
            outputs += ctx.outputs
        return outputs

    def _context(
        self, partition: int, *, event: dict[str, Any] | None = None, source: Source | None = None
    ) -> Context:
        return Context(
            partition,
            now=self._clock(),
            tables=self.tables,
            serde=self._serde,
            topic_prefix=self.config.kafka.topic_prefix,
            source_name=f"streams.{self.config.app_id}",
            event=event,
            source=source,
            internal_prefix=self.config.group_id,
        )

    # ------------------------------------------------------------------ transactions

    def _commit(
        self, outputs: list[Output], offsets: dict[tuple[str, int], int], handled: int = 0
    ) -> None:
        changes = [(t, c) for t in self.tables.values() for c in t.pending_changes()]
        if not outputs and not offsets and not changes:
            return
        consumer, producer = self._require()
        began_at = time.perf_counter()
        try:
            producer.begin_transaction()
            for out in outputs:
                self._produce(producer, out)
            for table, (partition, key, value) in changes:
                self._produce(producer, Output(table.changelog, key.encode(), value, [], partition))
            if offsets:
                positions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
                metadata = consumer.consumer_group_metadata()
                _retrying(
                    lambda: self._bounded(
                        "send_offsets_to_transaction",
                        lambda t: producer.send_offsets_to_transaction(positions, metadata, t),
                    )
                )
            _retrying(lambda: self._bounded("commit_transaction", producer.commit_transaction))
        except (KafkaException, TransactionStalledError) as exc:
            self.stats["commit_ms"] += round((time.perf_counter() - began_at) * 1000)
            self.stats["aborts"] += 1
            self._on_transaction_error(exc, offsets)
            return
        self.stats["commit_ms"] += round((time.perf_counter() - began_at) * 1000)
        for table in self.tables.values():
            table.commit_local()
        self.stats["transactions"] += 1
        self.stats["outputs"] += len(outputs)
        self.stats["events"] += handled

    def _produce(self, producer: Producer, out: Output) -> None:
        kwargs: dict[str, Any] = {"key": out.key, "value": out.value, "headers": out.headers}
        if out.partition is not None:
            kwargs["partition"] = out.partition
        while True:
            try:
                producer.produce(out.topic, **kwargs)
                return
            except BufferError:
                producer.poll(0.05)  # local queue full: let deliveries drain

    def _on_transaction_error(
        self, exc: KafkaException | TransactionStalledError, offsets: dict[tuple[str, int], int]
    ) -> None:
        for table in self.tables.values():
            table.rollback_local()
        error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
        if isinstance(error, KafkaError) and error.txn_requires_abort() and not error.fatal():
            log.warning("runtime.transaction_aborting", error=str(error))
            consumer, producer = self._require()
            try:
                self._bounded("abort_transaction", producer.abort_transaction)
            except (KafkaException, TransactionStalledError) as abort_exc:
                self._recover(f"abort failed: {abort_exc}")
                return
            # Go back to the committed positions, so the batch is processed again.
            self._rewind(consumer, [TopicPartition(t, p) for (t, p) in offsets])
            return
        # Fenced (paused past the transaction timeout, or another instance took our id), fatal,
        # or stuck: this producer is done for.
        self._recover(str(exc))

    def _recover(self, reason: str) -> None:
        """Replace the producer and start again from what Kafka committed.

        The new producer's ``init_transactions`` (same transactional id) fences the old one and
        waits until its open transaction is committed or aborted. Which of the two happened is
        not known here, so every owned partition is restored from its changelog again (as on a
        rebalance) and the consumer goes back to the committed offsets: the state, the offsets
        and the outputs stay those of one committed transaction.
        """
        log.warning("runtime.producer_recreating", reason=reason)
        self.stats["producer_rebuilds"] += 1
        old, self._producer = self._producer, None
        if old is not None:
            # Never touch it on this thread again: it may be stuck inside librdkafka.
            threading.Thread(target=_dispose, args=(old,), daemon=True).start()
            del old
        self._producer = self._new_producer(attempts=_REBUILD_ATTEMPTS)
        consumer, _ = self._require()
        assignment = consumer.assignment()
        for partition in sorted(self._owned):
            self._release(partition)
        self._on_assign(consumer, assignment)
        self._rewind(consumer, assignment)
        log.warning("runtime.producer_recreated", resume="from committed offsets")

    def _new_producer(self, *, attempts: int) -> Producer:
        """A transactional producer that has fenced its predecessors (tried ``attempts`` times)."""

        def create() -> Producer:
            producer = Producer(self._producer_config())
            try:
                self._bounded("init_transactions", producer.init_transactions)
            except (KafkaException, TransactionStalledError):
                threading.Thread(target=_dispose, args=(producer,), daemon=True).start()
                raise
            return producer

        try:
            producer: Producer = retrying(
                (KafkaException, TransactionStalledError),
                attempts=attempts,
                wait_s=1.0,
                max_wait_s=10.0,
            )(create)
        except (KafkaException, TransactionStalledError) as exc:
            raise StreamsError(f"cannot initialise transactions: {exc}") from exc
        return producer

    def _rewind(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Move ``partitions`` back to their committed offsets (the beginning if none)."""
        if not partitions:
            return
        try:
            committed = retrying(KafkaException, attempts=10, wait_s=0.5, max_wait_s=5.0)(
                consumer.committed, partitions, timeout=_TXN_CALL_TIMEOUT_S
            )
        except KafkaException as exc:
            raise StreamsError(f"cannot read the committed offsets: {exc}") from exc
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            try:
                consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            except KafkaException as exc:
                # Not fetching yet (just assigned): it starts from the committed offset anyway.
                log.debug(
                    "runtime.seek_skipped", topic=tp.topic, partition=tp.partition, error=str(exc)
                )

    def _bounded(self, operation: str, call: Callable[[float], None]) -> None:
        """Run a blocking transactional call with librdkafka's timeout and a hard deadline."""
        self._calls.run(
            operation,
            lambda: call(_TXN_CALL_TIMEOUT_S),
            deadline_s=_TXN_CALL_TIMEOUT_S + _TXN_DEADLINE_MARGIN_S,
        )

    def _dead_letter(self, message: Message, exc: BaseException) -> Output:
        self.stats["dead_letters"] += 1
        topic, partition, offset = _where(message)
        letter = DeadLetter(
            reason=str(exc) or type(exc).__name__,
            error_type=type(exc).__name__,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            key=message.key(),
            value=message.value(),
            consumer_group=self.config.group_id,
            original_headers=_headers(message),
        )
        return Output(
            topic_name(self.config.kafka, "dlq"), letter.key, letter.value or b"", letter.headers()
        )

    # ------------------------------------------------------------------ rebalancing

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for partition in sorted({tp.partition for tp in partitions} - self._owned):
            for table in self.tables.values():
                restored = table.restore(
                    partition,
                    self._read_changelog(table, partition),
                    buffer_bytes=self.config.restore_buffer_bytes,
                )
                log.info(
                    "runtime.restored", table=table.name, partition=partition, records=restored
                )
            self._owned.add(partition)
            self.processor.on_assigned(partition, self.tables)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Eager rebalancing revokes everything; a transaction is never open during a poll.
        for partition in sorted({tp.partition for tp in partitions} & self._owned):
            self._release(partition)

    def _release(self, partition: int) -> None:
        self._owned.discard(partition)
        for table in self.tables.values():
            table.drop(partition)
        self.processor.on_revoked(partition)

    def _read_changelog(
        self, table: StateTable, partition: int
    ) -> Iterator[tuple[bytes, bytes | None]]:
        """Every committed record of one changelog partition, oldest first, as they are read.

        A generator: the table writes records away as they come, and the reader's own queue
        is capped at the restore buffer, so a changelog larger than memory restores.
        """
        budget = self.config.restore_buffer_bytes
        reader = Consumer(
            {
                **self.config.kafka.client_config(),
                "group.id": f"{self.config.group_id}.restore",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "queued.max.messages.kbytes": max(1, budget // 1024),
                "max.partition.fetch.bytes": max(1024, budget),
            }
        )
        try:
            tp = TopicPartition(table.changelog, partition)
            low, high = _watermarks(reader, tp)
            if high <= low:
                return
            reader.assign([TopicPartition(table.changelog, partition, OFFSET_BEGINNING)])
            deadline = time.monotonic() + self.config.transaction_timeout_ms / 1000 + 60
            while time.monotonic() < deadline:
                for message in reader.consume(500, 0.5):
                    key = message.key()
                    if message.error() is None and key is not None:
                        yield key, message.value()
                (position,) = reader.position([tp])
                if position.offset >= high:
                    return
            raise StreamsError(f"restoring {table.changelog}[{partition}] did not reach {high}")
        finally:
            reader.close()

    # ------------------------------------------------------------------ plumbing

    def _ensure_topics(self) -> None:
        kafka = self.config.kafka
        ensure_topics(kafka)
        internal = [table.changelog for table in self.tables.values()]
        internal += [self.config.internal_topic(s) for s in self.processor.internal_inputs()]
        specs = [
            TopicSpec(
                name=name,
                partitions=kafka.partitions,
                replication_factor=kafka.replication_factor,
                config={
                    "cleanup.policy": "compact" if name.endswith("-changelog") else "delete",
                    "min.insync.replicas": str(min(2, kafka.replication_factor)),
                },
            )
            for name in internal
        ]
        if specs:
            ensure_topics(kafka, specs=specs)

    def _producer_config(self) -> dict[str, Any]:
        return {
            **self.config.kafka.client_config(),
            "client.id": f"{self.config.kafka.client_id}-{self.config.app_id}",
            "transactional.id": self.config.transactional_id,
            "transaction.timeout.ms": self.config.transaction_timeout_ms,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
        }

    def _consumer_config(self) -> dict[str, Any]:
        return {
            **self.config.kafka.client_config(),
            "client.id": f"{self.config.kafka.client_id}-{self.config.app_id}",
            "group.id": self.config.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            # Range keeps partition p of every input topic on the same instance (co-partitioning).
            "partition.assignment.strategy": "range",
            "session.timeout.ms": self.config.session_timeout_ms,
            "heartbeat.interval.ms": max(500, self.config.session_timeout_ms // 5),
            "topic.metadata.refresh.interval.ms": METADATA_REFRESH_MS,
        }

    def _check_fatal(self, error: KafkaError) -> None:
        if error.fatal():
            raise StreamsError(f"fatal consumer error: {error}")

    def _require(self) -> tuple[Consumer, Producer]:
        if self._consumer is None or self._producer is None:
            raise StreamsError("the runtime is not started")
        return self._consumer, self._producer


def _dispose(producer: Producer) -> None:
    """Drop a producer that is no longer used, off the processing thread."""
    try:
        producer.purge()
    except (KafkaException, RuntimeError) as exc:
        log.debug("runtime.purge_failed", error=str(exc))


def _where(message: Message) -> tuple[str, int, int]:
    """Topic, partition and offset of a message that carries no error (they are set then)."""
    return message.topic() or "", message.partition() or 0, message.offset() or 0


def _headers(message: Message) -> tuple[tuple[str, bytes], ...]:
    """A message's headers as ``(name, bytes)`` pairs."""
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return tuple(
        (name, value if isinstance(value, bytes) else str(value or "").encode())
        for name, value in pairs
    )


def _retrying(call: Callable[[], None], attempts: int = 3) -> None:
    """Call a transactional operation again when Kafka says the error is retriable."""
    for attempt in range(attempts):
        try:
            call()
            return
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if not error.retriable() or attempt == attempts - 1:
                raise
            log.warning("runtime.retrying", error=str(error))
            time.sleep(0.5 * (attempt + 1))


def _watermarks(reader: Consumer, tp: TopicPartition, timeout_s: float = 30.0) -> tuple[int, int]:
    """Low and high offsets of a partition, waiting for a just-created topic to be known."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            low, high = reader.get_watermark_offsets(tp, timeout=10)
            return low, high
        except KafkaException as exc:
            # A topic created a moment ago may not be in this new client's metadata yet, or
            # have no leader yet.
            unknown = exc.args[0].code() in _UNKNOWN_TOPIC_CODES
            if not unknown or time.monotonic() > deadline:
                raise StreamsError(
                    f"cannot read the end of {tp.topic}[{tp.partition}]: {exc}"
                ) from exc
            time.sleep(0.2)
