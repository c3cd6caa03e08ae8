"""The outbox relay: follows the command applications' notification logs and publishes to Kafka.

One cycle reads up to ``batch_size`` notifications from each application's log after its stored
position (in commit order), encodes them (chaining hashes per aggregate), and publishes them in
one Kafka transaction together with a record of the new positions and chain heads
(``_position_log.py``); then it stores the same positions and heads in PostgreSQL. A crash at any
point sends nothing twice: a batch not committed on Kafka is aborted and read again; a batch
committed on Kafka but not yet in PostgreSQL is recognised by its record when the relay next
leads, and its positions are stored instead of sending it again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Self

import structlog

from omium.commands._persistence import EVENT_STORE_SCHEMA, event_store_env
from omium.commands._suite import CommandApplications
from omium.commands.errors import EventStoreError
from omium.commands.relay._batch import BatchEncoder
from omium.commands.relay._mapping import EventEncoder
from omium.commands.relay._position_log import KafkaPositionLog
from omium.commands.relay._publisher import TransactionalPublisher
from omium.commands.relay._sources import START, LogSource, Position, RelayNotification
from omium.commands.relay._store import PostgresRelayStore
from omium.commands.relay._wakeup import Wakeup
from omium.commands.relay.errors import PublishError, RelayError, RelayStoreError
from omium.kernel.kafka import ensure_topics
from omium.kernel.serde import SchemaCatalog
from omium.kernel.settings import KafkaSettings, OmiumSettings

log = structlog.get_logger(__name__)

MAX_BACKOFF_S = 30.0
STOP_CHECK_S = 0.25  # longest a stop request waits while the relay is idle


@dataclass(frozen=True)
class RelayOptions:
    """How the relay batches, waits and reports.

    Attributes:
        batch_size: Notifications read per application per cycle (one Kafka transaction).
        batch_bytes: Stored event bytes per Kafka transaction at most (at least one event is
            always taken): a batch ends at ``batch_size`` notifications or this many bytes,
            whichever comes first, so large events do not make huge transactions.
        linger_s: After a wake-up, how long to wait for more events before reading, so a
            stream of single commands is relayed in fewer, larger transactions (adds up to
            this much latency; 0 reads at once).
        poll_interval_s: Longest wait between cycles when no NOTIFY arrives.
        publish_timeout_s: Longest a Kafka transaction may take to commit.
        listen: LISTEN for NOTIFY (False: poll only).
        progress_interval_s: How often progress is reported while running.
    """

    batch_size: int = 500
    batch_bytes: int = 4 * 1024 * 1024
    linger_s: float = 0.0
    poll_interval_s: float = 1.0
    publish_timeout_s: float = 30.0
    listen: bool = True
    progress_interval_s: float = 10.0


@dataclass
class RelayProgress:
    """What the relay has done since it started.

    Attributes:
        relayed: Events published.
        dead_lettered: Stored events sent to the DLQ instead.
        batches: Kafka transactions committed.
        lag: Per application, notifications stored but not yet on Kafka (at the last report).
        last_latency_s: For the newest event of the last batch, seconds from when it occurred
            to when its batch was committed.
        started: ``time.monotonic()`` when ``run`` started.
    """

    relayed: int = 0
    dead_lettered: int = 0
    batches: int = 0
    lag: dict[str, int] = field(default_factory=dict)
    last_latency_s: float | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def total_lag(self) -> int:
        """Notifications not yet on Kafka, over all applications."""
        return sum(self.lag.values())

    @property
    def rate(self) -> float:
        """Events relayed per second since start."""
        return self.relayed / max(time.monotonic() - self.started, 1e-9)


ProgressCallback = Callable[[RelayProgress], None]


def default_transactional_id(kafka: KafkaSettings, schema: str) -> str:
    """One Kafka transactional id per (topic prefix, event store schema): one active relay."""
    return f"{kafka.topic_prefix}.relay.{schema}"


class OutboxRelay:
    """Publishes every stored domain event of the four command applications to Kafka.

    Build it with :meth:`create`; run it with :meth:`run` (forever, or ``once`` to drain and
    return); stop it from another thread or a signal handler with :meth:`stop`.
    """

    def __init__(
        self,
        *,
        applications: CommandApplications,
        store: PostgresRelayStore,
        wakeup: Wakeup,
        batches: BatchEncoder,
        publisher_factory: Callable[[], TransactionalPublisher],
        options: RelayOptions,
        on_progress: ProgressCallback | None = None,
        position_log: KafkaPositionLog | None = None,
    ) -> None:
        """Wire the parts; prefer :meth:`create`, which builds them from settings."""
        self._apps = applications
        self._sources = sources_of(applications)
        self._store = store
        self._wakeup = wakeup
        self._batches = batches
        self._publisher_factory = publisher_factory
        self._publisher: TransactionalPublisher | None = None
        self._options = options
        self._on_progress = on_progress
        self._position_log = position_log
        self._positions: dict[str, Position] = {}
        # A batch is on Kafka but its positions are not in PostgreSQL: lead again (positions and
        # chain heads from Kafka's committed record) before anything else is sent.
        self._resync = False
        self._stopping = threading.Event()
        self._closed = False
        self._backoff_s = options.poll_interval_s
        self.progress = RelayProgress()

    @classmethod
    def create(
        cls,
        settings: OmiumSettings,
        *,
        schema: str = EVENT_STORE_SCHEMA,
        options: RelayOptions | None = None,
        transactional_id: str | None = None,
        create_topics: bool = True,
        on_progress: ProgressCallback | None = None,
    ) -> Self:
        """Connect to the event store and prepare the Kafka side.

        Args:
            settings: PostgreSQL, Kafka (topic prefix) and schemas folder.
            schema: The event store schema to follow.
            options: Batching, waiting and reporting.
            transactional_id: Kafka transactional id; one per relay deployment (default:
                :func:`default_transactional_id`).
            create_topics: Create missing Omium topics first.
            on_progress: Called with the progress every ``progress_interval_s`` and at exit.

        Returns:
            A relay that has not started yet.
        """
        options = options or RelayOptions()
        kafka = settings.kafka
        if create_topics:
            ensure_topics(kafka)
        dsn = settings.postgres.dsn()
        applications = CommandApplications.create(
            event_store_env(settings, schema=schema, pool_size=1, max_overflow=2, pre_ping=True)
        )
        store = PostgresRelayStore(dsn, schema=schema)
        store.create_tables()
        position_log = KafkaPositionLog(kafka, key=schema)
        position_log.ensure_topic()
        channels = [s.channel for s in sources_of(applications) if s.channel is not None]
        catalog = SchemaCatalog.from_directory(settings.schemas_dir)
        tx_id = transactional_id or default_transactional_id(kafka, schema)
        return cls(
            applications=applications,
            store=store,
            wakeup=Wakeup(dsn, channels=channels, schema=schema, listen=options.listen),
            batches=BatchEncoder(
                EventEncoder(catalog), topic_prefix=kafka.topic_prefix, schema=schema
            ),
            publisher_factory=lambda: TransactionalPublisher(
                kafka, transactional_id=tx_id, timeout_s=options.publish_timeout_s
            ),
            options=options,
            on_progress=on_progress,
            position_log=position_log,
        )

    # Running -----------------------------------------------------------------------------

    def run(self, *, once: bool = False) -> RelayProgress:
        """Relay until stopped, or with ``once`` until every log is drained.

        Transient faults (Kafka or PostgreSQL unavailable) are retried with backoff, except
        with ``once``, which raises them.

        Returns:
            The progress at exit.

        Raises:
            PublishError: ``fatal`` (fenced by another relay), or any fault with ``once``.
            RelayStoreError: With ``once``, when PostgreSQL fails.
            RelayError: With ``once``, when another relay holds the lock.
        """
        last_report = self.progress.started = time.monotonic()
        self._backoff_s = self._options.poll_interval_s
        try:
            while not self._stopping.is_set():
                caught_up = self._cycle(once=once)
                if caught_up is None:
                    break
                if time.monotonic() - last_report >= self._options.progress_interval_s:
                    self._report()
                    last_report = time.monotonic()
                if caught_up and once:
                    break
                if caught_up:
                    self._idle()
        finally:
            self._step_down()
            self._report()
        return self.progress

    def stop(self) -> None:
        """Ask the relay to stop after the batch in hand (safe from signal handlers)."""
        self._stopping.set()

    def close(self) -> None:
        """Release the producer, the lock and every connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._step_down()
        self._store.close()
        self._apps.close()

    def __enter__(self) -> Self:
        """Use as a context manager that closes the relay on exit."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the relay."""
        self.close()

    # One batch ---------------------------------------------------------------------------

    def relay_batch(self) -> bool:
        """Read, encode, publish and commit one batch.

        Returns:
            True if every log is drained (no application filled its batch).
        """
        limit = self._options.batch_size
        read = [(s, s.read(self._positions.get(s.name, START), limit)) for s in self._sources]
        batch, cut = _within_bytes(read, self._options.batch_bytes)
        if not batch:
            return True
        ids = {str(n.originator_id) for _, notes in batch for n in notes}
        encoded = self._batches.encode(batch, self._store.chain_heads(ids))
        assert self._publisher is not None, "relay_batch() runs only while leading"
        messages = encoded.messages
        if self._position_log is not None:
            after = {**self._positions, **encoded.positions}
            messages = [*messages, self._position_log.record(after, encoded.heads)]
        self._publisher.publish(messages)
        try:
            self._store.commit(encoded.positions, encoded.heads)
        except RelayStoreError:
            self._resync = True
            raise
        self._positions.update(encoded.positions)
        self._count(encoded.relayed, encoded.dead_lettered, encoded.newest_at)
        return not cut and all(len(notes) < limit for _, notes in batch)

    def lag(self) -> dict[str, int]:
        """Per application, how many notifications are stored but not yet relayed."""
        return {s.name: s.lag(self._positions.get(s.name, START)) for s in self._sources}

    # Internals ---------------------------------------------------------------------------

    def _cycle(self, *, once: bool) -> bool | None:
        """Lead, then drain the logs.

        Returns:
            True when caught up, False when there is more to do (or after a retried fault),
            None when stopped while standing by.
        """
        try:
            if not self._lead(wait=not once):
                if once and not self._stopping.is_set():
                    raise RelayError(f"another relay holds the lock of {self._store.schema!r}")
                return None
            caught_up = self._drain()
        except (PublishError, RelayStoreError, EventStoreError) as exc:
            if once or getattr(exc, "fatal", False):
                raise
            log.error("relay.cycle_failed", error=str(exc), retry_in_s=self._backoff_s)
            self._sleep(self._backoff_s)
            self._backoff_s = min(self._backoff_s * 2, MAX_BACKOFF_S)
            return False
        self._backoff_s = self._options.poll_interval_s
        return caught_up

    def _lead(self, *, wait: bool) -> bool:
        """Hold the relay lock and a working producer; after losing either, take it again.

        A producer that got stuck or hit a fatal error is replaced like one whose lock was lost:
        the new one fences it, and the positions come from Kafka's committed record.
        """
        publisher = self._publisher
        usable = publisher is not None and publisher.usable and not self._resync
        if publisher is not None and usable and self._wakeup.holds_lock:
            return True
        if publisher is not None:
            log.warning("relay.lock_lost" if usable else "relay.producer_replaced")
            publisher.close()
            self._publisher = None
        if not self._wakeup.acquire(should_stop=self._stopping.is_set, wait=wait):
            return False
        # Only the lock holder may init the transactional id: doing so fences the previous
        # holder, which must never happen to a healthy leader because of a standby.
        publisher = self._publisher_factory()
        try:
            self._catch_up_with_kafka()
            self._positions = self._store.positions()
        except BaseException:
            publisher.close()  # lead again next cycle, catch-up included
            raise
        self._publisher = publisher
        self._resync = False
        log.info("relay.leading", positions=self._positions)
        return True

    def _catch_up_with_kafka(self) -> None:
        """Store what the last batch committed on Kafka recorded, if PostgreSQL missed it.

        Runs after ``init_transactions`` (in the publisher factory) fenced the previous leader
        and aborted its open transaction, so the newest committed record is final.
        """
        if self._position_log is None:
            return
        committed = self._position_log.last()
        if committed is None:
            return
        stored = self._store.positions()
        ahead = {
            app: position
            for app, position in committed.positions.items()
            if position > stored.get(app, START)
        }
        if ahead:
            log.warning("relay.positions_from_kafka", positions=ahead)
            self._store.commit(ahead, committed.heads)

    def _step_down(self) -> None:
        """Release the producer and the lock, so a standby relay can take over at once."""
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None
        self._wakeup.close()

    def _idle(self) -> None:
        """Wait for a NOTIFY or the poll interval, in short slices so ``stop`` acts quickly."""
        deadline = time.monotonic() + self._options.poll_interval_s
        while not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._wakeup.wait(min(remaining, STOP_CHECK_S)):
                if self._options.linger_s > 0:
                    self._sleep(self._options.linger_s)
                return

    def _drain(self) -> bool:
        while not self._stopping.is_set():
            if self.relay_batch():
                return True
        return False

    def _count(self, relayed: int, dead: int, newest_at: datetime | None) -> None:
        progress = self.progress
        progress.relayed += relayed
        progress.dead_lettered += dead
        progress.batches += 1
        if newest_at is not None:
            progress.last_latency_s = (datetime.now(UTC) - newest_at).total_seconds()
        log.debug("relay.batch", relayed=relayed, dead_lettered=dead, positions=self._positions)

    def _report(self) -> None:
        try:
            self.progress.lag = self.lag()
        except EventStoreError as exc:
            log.warning("relay.lag_unknown", error=str(exc))
        p = self.progress
        log.info(
            "relay.progress",
            relayed=p.relayed,
            dead_lettered=p.dead_lettered,
            batches=p.batches,
            rate_per_s=round(p.rate, 1),
            lag=p.total_lag,
        )
        if self._on_progress is not None:
            self._on_progress(p)

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)


def _within_bytes(
    read: Sequence[tuple[LogSource, Sequence[RelayNotification]]], budget: int
) -> tuple[list[tuple[LogSource, Sequence[RelayNotification]]], bool]:
    """The leading notifications of each log that fit in ``budget`` stored bytes (one at least).

    Returns:
        The batch (logs with nothing left out), and whether anything read was left for later.
    """
    batch: list[tuple[LogSource, Sequence[RelayNotification]]] = []
    used, cut = 0, False
    for source, notes in read:
        taken = 0
        for note in notes:
            size = len(note.state)
            if used + size > budget and (used or taken):
                break
            used += size
            taken += 1
        if taken < len(notes):
            cut = True
        if taken:
            batch.append((source, notes[:taken]))
    return batch, cut


def sources_of(applications: CommandApplications) -> list[LogSource]:
    """The notification logs of all four command applications, in a fixed order."""
    return [
        LogSource(app)
        for app in (
            applications.workflows,
            applications.executions,
            applications.consensus,
            applications.policies,
        )
    ]
