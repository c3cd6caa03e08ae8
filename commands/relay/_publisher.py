"""The relay's Kafka producer: one idempotent, transactional producer, one transaction per batch.

Idempotence with at most 5 requests in flight keeps each partition in send order, so an
aggregate's events (all keyed by its id) arrive in version order. Each batch is one Kafka
transaction: a relay killed mid-batch leaves nothing of that batch visible to read-committed
consumers (the default of librdkafka and of ``omium.kernel.kafka.EventConsumer``); the restarted
relay's ``init_transactions`` aborts it and fences the dead instance. The batch's position goes
out in the same transaction (``_position_log.py``), so a crash after Kafka commits but before
PostgreSQL stores the position does not re-send the batch: the next leader reads the committed
position from Kafka (exactly-once publication).

Every blocking transactional call has a hard deadline (:class:`omium.kernel.kafka.DeadlineCalls`:
librdkafka can stay inside ``commit_transaction`` for good after a broker dies). A call that
outlives it, or a fatal producer error other than being fenced, leaves the publisher unusable
(:attr:`TransactionalPublisher.usable`): the batch is reported as not committed (a non-fatal
:class:`PublishError`), and the relay builds a new publisher, whose ``init_transactions`` (same
transactional id) fences the stuck producer and settles its transaction, then takes its positions
from the committed position record before it sends anything again.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Producer

from omium.commands.relay.errors import PublishError
from omium.kernel.kafka import DeadlineCalls, TransactionStalledError, producer_config
from omium.kernel.retry import retrying
from omium.kernel.settings import KafkaSettings

Headers = Sequence[tuple[str, bytes]]

_COMMIT_ATTEMPTS = 3
# How much longer than its own timeout a transactional call may take before it counts as stuck.
_DEADLINE_MARGIN_S = 15.0


@dataclass(frozen=True)
class OutgoingMessage:
    """One message of a batch.

    Attributes:
        topic: Full topic name.
        key: The aggregate id (keeps an aggregate's events in one partition).
        value: The encoded event, or the dead letter's body.
        headers: Kafka headers.
    """

    topic: str
    key: str
    value: bytes
    headers: Headers = ()


class TransactionalPublisher:
    """Publishes batches atomically; a batch is acknowledged only when ``publish`` returns.

    Args:
        kafka: Cluster settings (bootstrap servers, client id).
        transactional_id: Stable per relay deployment: a restarted relay with the same id fences
            and aborts whatever its dead predecessor left open.
        timeout_s: How long one transaction may take to commit.
    """

    def __init__(
        self, kafka: KafkaSettings, *, transactional_id: str, timeout_s: float = 30.0
    ) -> None:
        """Create the producer and register its transactional id with the cluster."""
        self._timeout_s = timeout_s
        self._calls = DeadlineCalls("relay")
        self.usable = True
        config = producer_config(
            kafka,
            **{
                "client.id": f"{kafka.client_id}-relay",
                "transactional.id": transactional_id,
                # With idempotence, up to 5 in flight still keeps each partition in order.
                "max.in.flight.requests.per.connection": 5,
                "transaction.timeout.ms": int(max(timeout_s * 2, 60) * 1000),
            },
        )
        self._producer = Producer(config)
        try:
            self._bounded("init_transactions", self._producer.init_transactions)
        except (KafkaException, TransactionStalledError) as exc:
            self._discard()
            raise self._failed("cannot start the relay's Kafka transactions", exc) from exc

    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        """Send a batch in one transaction and wait until Kafka committed it.

        Raises:
            PublishError: Nothing of the batch is committed; ``fatal`` says whether to exit
                (fenced by another relay) or retry the batch after a pause (with a new
                publisher when :attr:`usable` turned false).
        """
        if not messages:
            return
        if not self.usable:
            raise PublishError("the relay's producer must be replaced", fatal=False)
        context = f"batch of {len(messages)} not committed"
        try:
            self._producer.begin_transaction()
            for message in messages:
                self._produce(message)
        except KafkaException as exc:
            error = self._failed(context, exc)
            if not error.fatal and self.usable:
                self._abort()
            raise error from exc
        self._commit(context)

    def close(self) -> None:
        """Release the producer (any open transaction is aborted by the broker later).

        Never raises: a fenced producer's ``flush`` raises its fatal error again, which would
        hide the :class:`PublishError` the relay is stopping with.
        """
        self._calls.close()
        if self.usable:
            with contextlib.suppress(KafkaException):
                self._producer.flush(0)
        else:
            self._discard()

    def _produce(self, message: OutgoingMessage) -> None:
        while True:
            try:
                self._producer.produce(
                    message.topic,
                    key=message.key.encode(),
                    value=message.value,
                    headers=list(message.headers),
                )
                return
            except BufferError:
                # The local queue is full: serve delivery reports to drain it, then retry.
                self._producer.poll(0.05)

    def _commit(self, context: str) -> None:
        # A retriable commit error (a timeout) leaves the transaction committing: the
        # documented way on is to call commit again, not to abort.
        try:
            retrying(KafkaException, attempts=_COMMIT_ATTEMPTS, when=_retriable)(
                self._bounded, "commit_transaction", self._producer.commit_transaction
            )
        except (KafkaException, TransactionStalledError) as exc:
            failure = self._failed(context, exc)
            if not failure.fatal and self.usable:
                self._abort()
            raise failure from exc

    def _abort(self) -> None:
        # If aborting fails too, the producer is replaced: the new one's init_transactions
        # aborts the transaction (or the broker does when it times out).
        try:
            self._bounded("abort_transaction", self._producer.abort_transaction)
        except (KafkaException, TransactionStalledError):
            self.usable = False

    def _failed(self, context: str, exc: KafkaException | TransactionStalledError) -> PublishError:
        """The error to raise; a stuck call or a fatal (not fenced) error retires the producer."""
        if isinstance(exc, TransactionStalledError):
            self.usable = False
            return PublishError(f"{context}: {exc}", fatal=False)
        failure = _publish_error(context, exc)
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError) and error.fatal() and error.code() not in _FENCED:
            self.usable = False
            return PublishError(failure.args[0], fatal=False)
        return failure

    def _bounded(self, operation: str, call: Callable[[float], object]) -> None:
        self._calls.run(
            operation,
            lambda: call(self._timeout_s),
            deadline_s=self._timeout_s + _DEADLINE_MARGIN_S,
        )

    def _discard(self) -> None:
        """Let go of the producer off this thread (it may be stuck inside librdkafka)."""
        self.usable = False
        producer = self._producer
        threading.Thread(target=_purge, args=(producer,), daemon=True).start()


def _purge(producer: Producer) -> None:
    # Nothing left to save: its transaction is settled by its successor.
    with contextlib.suppress(KafkaException, RuntimeError):
        producer.purge()


def _retriable(exc: BaseException) -> bool:
    error = exc.args[0] if exc.args else None
    return isinstance(error, KafkaError) and error.retriable()


def _publish_error(context: str, exc: KafkaException) -> PublishError:
    error = exc.args[0] if exc.args else None
    if not isinstance(error, KafkaError):
        return PublishError(f"{context}: {exc}", fatal=True)
    fatal = error.fatal() or error.code() in _FENCED
    # retriable() or txn_requires_abort(): abort and send the batch again.
    return PublishError(f"{context}: {error.str()}", fatal=fatal)


# librdkafka's local "_FENCED" code, and the broker's: another relay took the transactional id.
_FENCED = frozenset(
    {
        KafkaError._FENCED,  # noqa: SLF001 - a public constant with a leading underscore
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
    }
)
