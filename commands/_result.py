"""What a command handler returns, and how that is kept for idempotent replays."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

A = TypeVar("A", bound=Aggregate)


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one accepted command.

    Attributes:
        aggregate_id: The aggregate the command was applied to (or created).
        version: The aggregate's version after the command.
        events: Names of the events the command recorded, in order (empty when the command
            decided that nothing needed to change).
        data: Command-specific values the caller needs (generated ids, a consensus outcome);
            JSON-compatible.
        replayed: True when this is the stored result of an earlier command with the same
            idempotency key, and nothing was written this time.
    """

    aggregate_id: UUID
    version: int
    events: tuple[str, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)
    replayed: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible dict (``replayed`` is not stored: it describes a delivery)."""
        return {
            "aggregate_id": str(self.aggregate_id),
            "version": self.version,
            "events": list(self.events),
            "data": dict(self.data),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], *, replayed: bool = False) -> CommandResult:
        """Rebuild a result stored with :meth:`to_json`."""
        return cls(
            aggregate_id=UUID(str(obj["aggregate_id"])),
            version=int(obj["version"]),
            events=tuple(obj.get("events", ())),
            data=dict(obj.get("data", {})),
            replayed=replayed,
        )


@dataclass(frozen=True)
class Outcome(Generic[A]):
    """What a handler body returns when it has data for the caller besides the aggregate.

    Attributes:
        aggregate: The aggregate the command was applied to, with its pending events.
        data: JSON-compatible values to put in :attr:`CommandResult.data`.
    """

    aggregate: A
    data: Mapping[str, Any] = field(default_factory=dict)
