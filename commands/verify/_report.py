"""What ``omium verify`` answers: the scope checked, counts, and the first break of each chain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID


class Where(StrEnum):
    """Which copy of the history a break was found in."""

    EVENT_STORE = "event_store"
    """The stored events, re-encoded the way the relay encodes them."""
    KAFKA = "kafka"
    """The Avro events on the domain topics (read committed, from the beginning)."""


class BreakKind(StrEnum):
    """How a chain is broken."""

    HASH_MISMATCH = "hash_mismatch"
    """Content and hash disagree: on Kafka, the message no longer hashes to its ``hash``; in the
    event store, the stored event re-encodes to another hash than the relay published."""
    BROKEN_LINK = "broken_link"
    """``prev_hash`` is not the previous event's hash."""
    VERSION_GAP = "version_gap"
    """A version is missing or out of order (not explained by a relay dead letter)."""
    DUPLICATE = "duplicate"
    """Two different messages for one aggregate version (byte-identical re-sends are fine)."""
    MISSING = "missing"
    """An event the other copy has (or the relay's chain head counts) is not there."""
    UNDECODABLE = "undecodable"
    """A message or stored event cannot be decoded or encoded at all."""


@dataclass(frozen=True)
class ChainBreak:
    """The first broken link of one aggregate's chain in one copy of the history.

    Attributes:
        where: The copy it was found in.
        kind: What is wrong.
        aggregate_id: The aggregate.
        aggregate_version: The offending event's version (``None``: unknown, e.g. undecodable).
        expected: What the chain requires there (a hash, a version, ...).
        found: What is there.
        detail: One sentence for a person.
        topic: Kafka topic of the offending message, for breaks found on Kafka.
        partition: Its partition.
        offset: Its offset.
    """

    where: Where
    kind: BreakKind
    aggregate_id: str
    aggregate_version: int | None
    expected: str
    found: str
    detail: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None

    def describe(self) -> str:
        """One line: where, which aggregate and version, what was expected and found."""
        version = "?" if self.aggregate_version is None else str(self.aggregate_version)
        at = ""
        if self.topic is not None:
            at = f" ({self.topic}[{self.partition}]@{self.offset})"
        return (
            f"{self.where.value}: {self.kind.value} in aggregate {self.aggregate_id} "
            f"version {version}{at}: expected {self.expected}, found {self.found}. {self.detail}"
        )


@dataclass(frozen=True)
class VerifyScope:
    """What to verify: one run, one tenant, or (both ``None``) everything.

    Attributes:
        execution_id: A run: its execution aggregate and the consensus rounds opened for it.
        tenant_id: A tenant: every aggregate it owns. With ``execution_id``, the run must be
            this tenant's (another tenant's run is reported as not found).
    """

    execution_id: UUID | None = None
    tenant_id: str | None = None

    def describe(self) -> str:
        """``run <id>``, ``tenant <id>`` or ``everything``."""
        if self.execution_id is not None:
            return f"run {self.execution_id}"
        if self.tenant_id is not None:
            return f"tenant {self.tenant_id}"
        return "everything"


@dataclass
class VerifyReport:
    """The outcome of one verification.

    Attributes:
        scope: What was verified.
        checked_store: Whether the event store was checked.
        checked_kafka: Whether the Kafka topics were checked.
        aggregates: Aggregates looked at (in either copy).
        store_events: Stored events re-encoded.
        kafka_events: Distinct events read from Kafka (first copies).
        kafka_duplicates: Byte-identical re-sends on Kafka (expected after a relay crash).
        unrelayed: Stored events the relay has not published yet (not a fault).
        dead_lettered: Versions the relay sent to the DLQ instead (gaps they explain).
        breaks: The first break of each broken chain, per copy, in the order found.
    """

    scope: VerifyScope
    checked_store: bool
    checked_kafka: bool
    aggregates: int = 0
    store_events: int = 0
    kafka_events: int = 0
    kafka_duplicates: int = 0
    unrelayed: int = 0
    dead_lettered: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no chain is broken."""
        return not self.breaks

    @property
    def first_break(self) -> ChainBreak | None:
        """The first break found, if any."""
        return self.breaks[0] if self.breaks else None

    def breaks_in(self, where: Where) -> Sequence[ChainBreak]:
        """The breaks found in one copy of the history."""
        return [b for b in self.breaks if b.where is where]
