"""The execution worker: a consumer group on work items, running steps with bounded concurrency.

Every worker process joins the group ``<prefix>.worker.execute`` on the work topic, so adding
processes spreads the partitions (and so the runs) over them. Items run in a thread pool of
``concurrency`` threads; when it is full the worker pauses its partitions and keeps polling (so it
stays in the group) until a thread frees up.

Offsets are committed only up to the oldest item still in hand in each partition, so an item is
acknowledged after its step's outcome was recorded: a worker killed mid-step leaves its items
uncommitted, and the worker that gets its partitions after the rebalance receives them again (and
takes the orphaned steps over, see :mod:`omium.worker._executor`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import structlog
from confluent_kafka import Consumer, Message, TopicPartition

from omium.kernel.errors import PersistenceError
from omium.kernel.health import HealthBeacon, consumer_lag
from omium.kernel.kafka import DeadLetter, consumer_config, ensure_topics, topic_name
from omium.kernel.settings import KafkaSettings
from omium.worker._executor import StepExecutor
from omium.worker._services import WorkerServices
from omium.worker._work import WorkItem, work_topic, work_topic_spec, worker_group

log = structlog.get_logger(__name__)

RETRY_DELAY_S = 1.0


class _Offsets:
    """Per partition: the offsets in hand, and the next offset to commit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[tuple[str, int], set[int]] = {}
        self._next: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, int], int] = {}

    def taken(self, tp: tuple[str, int], offset: int) -> None:
        with self._lock:
            self._open.setdefault(tp, set()).add(offset)
            self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def done(self, tp: tuple[str, int], offset: int) -> None:
        with self._lock:
            if tp in self._open:
                self._open[tp].discard(offset)

    def in_hand(self) -> int:
        with self._lock:
            return sum(len(offsets) for offsets in self._open.values())

    def forget(self, tps: list[tuple[str, int]]) -> None:
        with self._lock:
            for tp in tps:
                self._open.pop(tp, None)
                self._next.pop(tp, None)
                self._committed.pop(tp, None)

    def committable(self) -> list[TopicPartition]:
        """Partitions whose safe commit point moved since the last commit."""
        result = []
        with self._lock:
            for tp, following in self._next.items():
                open_ = self._open.get(tp)
                safe = min(open_) if open_ else following
                if self._committed.get(tp) != safe:
                    self._committed[tp] = safe
                    result.append(TopicPartition(tp[0], tp[1], safe))
        return result


class ExecutionWorker:
    """Consumes work items and runs them.

    Args:
        services: What step runs use (write side, stores, providers, telemetry, heartbeats).
        kafka: Where the work topic is.
        concurrency: Items run at the same time at most.
        session_timeout_ms: How long the group waits for a silent worker before its
            partitions (and its steps, once their claims expire) go to the others.
        poll_timeout_s: Longest wait for new items in one poll.
        health: Where this worker's heartbeat goes, written from its poll loop.
    """

    def __init__(
        self,
        services: WorkerServices,
        *,
        kafka: KafkaSettings,
        concurrency: int = 4,
        session_timeout_ms: int = 6000,
        poll_timeout_s: float = 0.2,
        health: HealthBeacon | None = None,
    ) -> None:
        """Prepare; :meth:`run` joins the group."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._s = services
        self._kafka = kafka
        self.concurrency = concurrency
        self._session_timeout_ms = session_timeout_ms
        self._poll_timeout_s = poll_timeout_s
        self._offsets = _Offsets()
        self._stop = threading.Event()
        self._executor = StepExecutor(services, stop=self._stop)
        self._consumer: Consumer | None = None
        self.owned: set[int] = set()
        self.stats = {"items": 0, "done": 0, "retried": 0, "dead_lettered": 0}
        self.pipeline_stats = (
            self._executor.pipeline.stats if self._executor.pipeline is not None else {}
        )
        self.on_outcome: Callable[[WorkItem, str], None] | None = None
        self.health = health
        self._last_batch_at: datetime | None = None

    def run(self, stop: threading.Event) -> None:
        """Process items until ``stop`` is set, then let running steps finish and leave."""
        ensure_topics(self._kafka, specs=[work_topic_spec(self._kafka)])
        self._consumer = Consumer(self._consumer_config())
        self._consumer.subscribe(
            [work_topic(self._kafka)],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        self._s.heartbeats.start()
        if self._s.pipeline and self._s.policies is not None:
            self._s.policies.start()  # before the first step: no output is judged unread
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="step")
        try:
            while not stop.is_set():
                self._poll_once(pool)
        finally:
            self._stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            self._commit()
            if self.health is not None:
                self.health.beat(**self._health_report(), stopped=True)
            self._consumer.close()
            self._s.heartbeats.stop()
            if self._s.policies is not None:
                self._s.policies.close()

    # ------------------------------------------------------------------ the loop

    def _poll_once(self, pool: ThreadPoolExecutor) -> None:
        consumer = self._require()
        free = self.concurrency - self._offsets.in_hand()
        assignment = consumer.assignment()
        if free <= 0:
            consumer.pause(assignment)  # keep polling (group membership), take nothing new
        elif assignment:
            consumer.resume(assignment)
        # consume() waits for its whole timeout unless the batch fills up: poll() returns as
        # soon as one item is there, and what else is already fetched comes along at once.
        first = consumer.poll(self._poll_timeout_s)
        if first is not None:
            for message in [first, *consumer.consume(max(free - 1, 1), 0)]:
                self._take(message, pool)
            self._last_batch_at = datetime.now(UTC)
        self._commit()
        if self.health is not None:
            self.health.maybe_beat(self._health_report)

    def _health_report(self) -> dict[str, Any]:
        lag, _ = consumer_lag(self._consumer) if self._consumer is not None else (None, ())
        return {
            "lag": lag,
            "last_batch_at": self._last_batch_at,
            "events": self.stats["items"],
            "partitions": sorted(self.owned),
            "details": {
                **{k: v for k, v in self.stats.items() if k != "items"},
                "in_hand": self._offsets.in_hand(),
                "concurrency": self.concurrency,
            },
        }

    def _take(self, message: Message, pool: ThreadPoolExecutor) -> None:
        error = message.error()
        if error is not None:
            if error.fatal():
                raise PersistenceError(f"fatal consumer error: {error}")
            log.warning("worker.consumer_error", error=str(error))
            return
        tp = (message.topic() or "", message.partition() or 0)
        offset = message.offset() or 0
        self._offsets.taken(tp, offset)
        self.stats["items"] += 1
        try:
            item = WorkItem.from_bytes(message.value() or b"")
        except ValueError as exc:
            self._dead_letter(message, exc)
            self._offsets.done(tp, offset)
            return
        pool.submit(self._work, item, message)

    def _work(self, item: WorkItem, message: Message) -> None:
        tp = (message.topic() or "", message.partition() or 0)
        while not self._stop.is_set():
            try:
                outcome = self._executor.process(item)
            except PersistenceError as exc:
                self.stats["retried"] += 1
                log.warning(
                    "worker.store_unavailable",
                    execution_id=item.execution_id,
                    step_id=item.step_id,
                    error=str(exc),
                    retry_in_s=RETRY_DELAY_S,
                )
                self._stop.wait(RETRY_DELAY_S)
                continue
            except Exception as exc:  # a bug or a bad item: keep it in the DLQ, move on
                log.exception("worker.item_failed", dispatch_id=item.dispatch_id)
                self._dead_letter(message, exc)
                outcome = f"dead-lettered: {exc}"
            if outcome is None:
                return  # stopping: leave it uncommitted, it is redelivered
            self._report(item, outcome)
            self._offsets.done(tp, message.offset() or 0)
            return

    def _report(self, item: WorkItem, outcome: str) -> None:
        self.stats["done"] += 1
        log.info(
            "worker.item_done",
            execution_id=item.execution_id,
            step_id=item.step_id,
            reason=item.reason,
            outcome=outcome,
        )
        if self.on_outcome is not None:
            self.on_outcome(item, outcome)

    # ------------------------------------------------------------------ Kafka plumbing

    def _commit(self) -> None:
        offsets = self._offsets.committable()
        if offsets and self._consumer is not None:
            try:
                self._consumer.commit(offsets=offsets, asynchronous=False)
            except Exception as exc:  # a commit lost to a rebalance is redelivered, not lost
                log.info("worker.commit_skipped", error=str(exc))

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Cooperative rebalancing hands out increments: keep the whole picture for the log.
        self.owned |= {tp.partition for tp in partitions}
        log.info("worker.partitions_owned", partitions=sorted(self.owned))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Items of these partitions that are still running finish and record their outcome;
        # their offsets are the next owner's to commit (it receives them again and sees them done).
        self._commit()
        self._offsets.forget([(tp.topic, tp.partition) for tp in partitions])
        self.owned -= {tp.partition for tp in partitions}
        log.info("worker.partitions_owned", partitions=sorted(self.owned))

    def _dead_letter(self, message: Message, exc: BaseException) -> None:
        self.stats["dead_lettered"] += 1
        letter = DeadLetter(
            reason=str(exc) or type(exc).__name__,
            error_type=type(exc).__name__,
            source_topic=message.topic() or "",
            source_partition=message.partition() or 0,
            source_offset=message.offset() or 0,
            key=message.key(),
            value=message.value(),
            consumer_group=worker_group(self._kafka),
            original_headers=[(k, v or b"") for k, v in _header_pairs(message)],
        )
        producer = self._s.telemetry.producer
        producer.send(
            topic_name(self._kafka, "dlq"),
            key=_text(letter.key),
            value=letter.value or b"",
            headers=letter.headers(),
        )
        producer.flush()

    def _consumer_config(self) -> dict[str, Any]:
        return consumer_config(
            self._kafka,
            worker_group(self._kafka),
            **{
                "session.timeout.ms": self._session_timeout_ms,
                "heartbeat.interval.ms": max(500, self._session_timeout_ms // 5),
                "partition.assignment.strategy": "cooperative-sticky",
                "client.id": f"{self._kafka.client_id}-worker-{self._s.worker_id}",
            },
        )

    def _require(self) -> Consumer:
        if self._consumer is None:
            raise RuntimeError("the worker is not running")
        return self._consumer


def _header_pairs(message: Message) -> list[tuple[str, bytes | None]]:
    headers = message.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    return [(str(k), v if isinstance(v, bytes) else None) for k, v in pairs]


def _text(key: bytes | None) -> str | None:
    return None if key is None else key.decode(errors="replace")
