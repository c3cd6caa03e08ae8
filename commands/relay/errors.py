"""Errors raised by the outbox relay.

Each carries machine-readable fields so an operator (or a test) can tell what failed without
parsing the message.
"""

from __future__ import annotations

from omium.kernel.errors import OmiumError, PersistenceError


class RelayError(OmiumError):
    """Root of the relay's errors."""


class UnmappableEventError(RelayError):
    """A stored domain event could not be turned into an Avro event (a bug, never transient).

    The relay dead-letters such an event with this error's message and moves on.

    Attributes:
        topic: The stored event's topic (``module:Aggregate.Event``).
        aggregate_id: The aggregate the event belongs to.
        aggregate_version: The event's version in its aggregate.
    """

    def __init__(
        self, message: str, *, topic: str, aggregate_id: str, aggregate_version: int
    ) -> None:
        """Build the error from its machine-readable fields."""
        super().__init__(f"{topic} {aggregate_id}@{aggregate_version}: {message}")
        self.topic = topic
        self.aggregate_id = aggregate_id
        self.aggregate_version = aggregate_version


class PublishError(RelayError, PersistenceError):
    """Kafka did not take a batch; nothing of it is visible to read-committed consumers.

    Attributes:
        fatal: The producer cannot go on (fenced by a newer relay, or a fatal librdkafka
            error); the process should exit and be restarted.
    """

    def __init__(self, message: str, *, fatal: bool) -> None:
        """Build the error from its machine-readable fields."""
        super().__init__(message)
        self.fatal = fatal


class RelayStoreError(RelayError, PersistenceError):
    """The relay's position or chain heads could not be read or written in PostgreSQL."""
