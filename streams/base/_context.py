"""What a processor's handler sees: the event, its partition's state, and a way to emit."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from omium.kernel.serde import AvroSerde
from omium.streams.base._state import StateTable

SOURCE_HEADER = "omium.source"
"""Header naming the processor that produced a message."""


@dataclass(frozen=True)
class Source:
    """Where the message being handled came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None


@dataclass
class Output:
    """One message to produce in the current transaction."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    partition: int | None = None


class Context:
    """The handler's view of one partition during one transaction.

    Reads see this handler call's own writes; writes and outputs are kept aside and become part
    of the transaction only if the call returns normally, so a handler that raises leaves no half
    of its effects behind.

    Args:
        partition: The input partition whose state the handler may touch.
        now: Processing time (wall clock, UTC) of this call.
        tables: The processor's state tables, by name.
        serde: Encodes emitted events.
        topic_prefix: Prefix of Omium's topics.
        source_name: Value of the :data:`SOURCE_HEADER` on every output.
        event: The decoded event being handled (``None`` in timers).
        source: Where it came from (``None`` in timers).
        internal_prefix: Prefix of the processor's internal topics (its group id).
    """

    def __init__(
        self,
        partition: int,
        *,
        now: datetime,
        tables: Mapping[str, StateTable],
        serde: AvroSerde,
        topic_prefix: str,
        source_name: str,
        event: dict[str, Any] | None = None,
        source: Source | None = None,
        internal_prefix: str = "",
    ) -> None:
        """Start an empty unit of work for ``partition``."""
        self._internal_prefix = internal_prefix
        self.partition = partition
        self.now = now
        self.event = event
        self.source = source
        self._tables = tables
        self._serde = serde
        self._prefix = topic_prefix
        self._source_name = source_name
        self._writes: dict[tuple[str, str], Any] = {}
        self._deleted: set[tuple[str, str]] = set()
        self.outputs: list[Output] = []

    def get(self, table: str, key: str) -> Any | None:
        """The state stored under ``key`` in ``table`` (``None`` if absent)."""
        if (table, key) in self._deleted:
            return None
        if (table, key) in self._writes:
            return self._writes[(table, key)]
        return self._tables[table].get(self.partition, key)

    def put(self, table: str, key: str, value: Any) -> None:
        """Store a JSON-compatible ``value`` under ``key`` in ``table``."""
        self._deleted.discard((table, key))
        self._writes[(table, key)] = value

    def delete(self, table: str, key: str) -> None:
        """Remove ``key`` from ``table``."""
        self._writes.pop((table, key), None)
        self._deleted.add((table, key))

    def emit(self, event: Mapping[str, Any], *, key: str | uuid.UUID) -> str:
        """Encode an Omium event and produce it to its area's topic, keyed by ``key``.

        Returns:
            The topic it goes to.

        Raises:
            SchemaValidationError: The event does not match its schema.
        """
        value = self._serde.encode(event)
        topic = f"{self._prefix}.{self._serde.area_of(event['event_type'])}"
        headers = [
            ("event_id", str(event["event_id"]).encode()),
            ("event_type", str(event["event_type"]).encode()),
            ("tenant_id", str(event["tenant_id"]).encode()),
            (SOURCE_HEADER, self._source_name.encode()),
        ]
        self.outputs.append(Output(topic, str(key).encode(), value, headers))
        return topic

    def send_internal(self, suffix: str, *, key: str, record: Mapping[str, Any]) -> None:
        """Produce a JSON record to one of the processor's internal topics (a repartition).

        Args:
            suffix: The topic's suffix, as listed in ``Processor.internal_inputs``.
            key: Message key; it picks the partition, and so where the record's state lives.
            record: A JSON-compatible mapping.
        """
        value = json.dumps(dict(record), sort_keys=True, default=str).encode()
        headers = [(SOURCE_HEADER, self._source_name.encode())]
        self.outputs.append(
            Output(f"{self._internal_prefix}.{suffix}", key.encode(), value, headers)
        )

    def apply_to(self, tables: Mapping[str, StateTable]) -> None:
        """Hand the call's state writes to the tables' current transaction."""
        for table, key in self._deleted:
            tables[table].delete(self.partition, key)
        for (table, key), value in self._writes.items():
            tables[table].put(self.partition, key, value)
