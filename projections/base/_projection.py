"""The contract every projection implements: apply an event, then flush a batch.

A runner hands a projection each event of a polled batch (``apply``), then asks it to make the
batch durable together with the offsets the batch ends at (``flush``). Stores that have
transactions (PostgreSQL, Redis) keep those offsets beside the rows and refuse a flush whose
starting offsets are not the stored ones (``OffsetsMovedError``); the others rely on Kafka's
committed offsets and on idempotent writes. Either way a redelivered event changes nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from omium.kernel.kafka import Area, ConsumedEvent
from omium.projections.base.errors import TopicPartition

Op = TypeVar("Op")

Offsets = Mapping[TopicPartition, int]
"""Next offsets to read, by ``(topic, partition)``."""

Expected = Mapping[TopicPartition, int | None]
"""Offsets a writer believes the store holds (``None``: none stored yet)."""

Reject = Callable[[Sequence[tuple[ConsumedEvent, str]]], None]
"""Takes events a store refused for good, with reasons; they are durable when it returns."""


@dataclass(frozen=True)
class FlushResult:
    """What one flush wrote.

    Attributes:
        events: Events in the batch (applied or skipped as already applied).
        writes: Store operations performed (rows, keys, documents, records).
        rejected: Events the store refused for good (a document it cannot index, a record it
            will not take), with the reason; the runner dead-letters them.
    """

    events: int
    writes: int
    rejected: list[tuple[ConsumedEvent, str]] = field(default_factory=list)


class Projection(ABC):
    """A read model fed from Kafka: one consumer group, one store.

    Attributes:
        name: The read model's name (``postgres``, ``redis`` ...); the consumer group is
            ``<topic prefix>.projection.<name>``.
        areas: The topic areas it reads.
        keeps_offsets: Whether ``flush`` stores offsets atomically with the writes (then the
            store's offsets, not Kafka's, say where to resume).
    """

    name: ClassVar[str]
    areas: ClassVar[tuple[Area, ...]]
    keeps_offsets: ClassVar[bool] = False

    @abstractmethod
    def apply(self, consumed: ConsumedEvent) -> None:
        """Take one event into the current batch.

        Raises:
            Exception: The event cannot be projected (the runner dead-letters it); a
                ``PersistenceError`` stops the batch instead.
        """

    @abstractmethod
    def flush(
        self, offsets: Offsets, *, expected: Expected, reject: Reject | None = None
    ) -> FlushResult:
        """Write the batch durably; with ``keeps_offsets``, store ``offsets`` in the same unit.

        Args:
            offsets: Where each partition of the batch resumes after it.
            expected: The stored offsets this writer believes are there before the batch
                (``None``: none stored yet). Ignored by stores that keep no offsets.
            reject: Where a store with transactions hands events it refuses for good before
                it commits the others with the offsets (they are durable when it returns);
                without it, or in stores without transactions, they come back in
                ``FlushResult.rejected``.

        Raises:
            OffsetsMovedError: The stored offsets differ from ``expected``; nothing was written.
            ProjectionStoreError: The store failed; nothing (or an idempotent part) was written.
        """

    def stored_offsets(self) -> dict[TopicPartition, int]:
        """The next offsets the store holds (empty when it keeps none)."""
        return {}

    def discard(self) -> None:  # noqa: B027 - optional hook; stateless projections need none
        """Drop the current batch without writing it."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class BatchingProjection(Projection, Generic[Op]):
    """A projection that turns each event into store operations at ``apply`` time.

    Mapping at ``apply`` means a malformed event fails alone (and is dead-lettered) instead of
    failing the flush of the whole batch. Subclasses implement ``prepare`` and ``write``.
    """

    def __init__(self) -> None:
        self._batch: list[tuple[ConsumedEvent, Sequence[Op]]] = []

    @abstractmethod
    def prepare(self, consumed: ConsumedEvent) -> Sequence[Op]:
        """The store operations of one event (empty when the event means nothing here)."""

    @abstractmethod
    def write(
        self,
        batch: Sequence[tuple[ConsumedEvent, Sequence[Op]]],
        offsets: Offsets,
        expected: Expected,
    ) -> int | FlushResult:
        """Perform the batch's operations durably.

        Returns:
            How many store writes happened, or a full ``FlushResult`` (with rejections).
        """

    def apply(self, consumed: ConsumedEvent) -> None:
        """Map the event now; it is written at the next ``flush``."""
        self._batch.append((consumed, self.prepare(consumed)))

    def flush(
        self, offsets: Offsets, *, expected: Expected, reject: Reject | None = None
    ) -> FlushResult:
        """Write the batch (even an empty one, so offsets of skipped messages move on)."""
        batch, self._batch = self._batch, []
        if not batch and not (offsets and self.keeps_offsets):
            return FlushResult(events=0, writes=0)
        written = self.write(batch, offsets, expected)
        if isinstance(written, FlushResult):
            return written
        return FlushResult(events=len(batch), writes=written)

    def discard(self) -> None:
        """Drop the batch (after a failed flush it is read again from the stored offsets)."""
        self._batch = []

    @property
    def pending(self) -> int:
        """Events waiting for the next flush."""
        return len(self._batch)


def event_summary(consumed: ConsumedEvent) -> dict[str, Any]:
    """The envelope fields of an event as plain JSON-friendly values (for logs and streams)."""
    event = consumed.event
    return {
        "event_id": str(event["event_id"]),
        "event_type": event["event_type"],
        "tenant_id": event["tenant_id"],
        "aggregate_id": str(event["aggregate_id"]),
        "aggregate_version": event["aggregate_version"],
        "occurred_at": event["occurred_at"].isoformat(),
    }
