"""The relay's Kafka producer: one idempotent, transactional producer, one transaction per batch.

Idempotence with at most 5 requests in flight keeps each partition in send order, so an
aggregate's events (all keyed by its id) arrive in version order. Each batch is one Kafka
transaction: a relay killed mid-batch leaves nothing of that batch visible to read-committed
consumers (the default of librdkafka and of ``omium.kernel.kafka.EventConsumer``); the restarted
relay's ``init_transactions`` aborts it and fences the dead instance. A crash after Kafka commits
but before PostgreSQL stores the position re-sends that batch: at-least-once, with the same
event ids and bytes, for consumers to dedupe.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Producer

from commands.relay.errors import PublishError
from omium.kernel.kafka import producer_config
from omium.kernel.settings import KafkaSettings

Headers = Sequence[tuple[str, bytes]]

_COMMIT_ATTEMPTS = 3


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
            self._producer.init_transactions(timeout_s)
        except KafkaException as exc:
            raise _publish_error("cannot start the relay's Kafka transactions", exc) from exc

    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        """Send a batch in one transaction and wait until Kafka committed it.

        Raises:
            PublishError: Nothing of the batch is committed; ``fatal`` says whether to exit
                (fenced by another relay) or retry the batch after a pause.
        """
        if not messages:
            return
        context = f"batch of {len(messages)} not committed"
        try:
            self._producer.begin_transaction()
            for message in messages:
                self._produce(message)
        except KafkaException as exc:
            error = _publish_error(context, exc)
            if not error.fatal:
                self._abort()
            raise error from exc
        self._commit(context)

    def close(self) -> None:
        """Release the producer (any open transaction is aborted by the broker later)."""
        self._producer.flush(0)

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
        for attempt in range(_COMMIT_ATTEMPTS):
            try:
                self._producer.commit_transaction(self._timeout_s)
                return
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                # A retriable commit error (a timeout) leaves the transaction committing: the
                # documented way on is to call commit again, not to abort.
                retriable = isinstance(error, KafkaError) and error.retriable()
                if retriable and attempt + 1 < _COMMIT_ATTEMPTS:
                    continue
                failure = _publish_error(context, exc)
                if not failure.fatal:
                    self._abort()
                raise failure from exc

    def _abort(self) -> None:
        # If aborting fails too, the broker aborts the transaction when it times out, and the
        # next begin_transaction() fails loudly if the producer is unusable.
        with contextlib.suppress(KafkaException):
            self._producer.abort_transaction(self._timeout_s)


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
