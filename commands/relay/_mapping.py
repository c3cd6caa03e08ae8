"""From a stored domain event to a hashed Avro event: the envelope and the mapping registry.

Each area module (``_map_<area>.py``) lists its aggregate's events with the Avro event type, the
schema version written and a payload function. The version is pinned on purpose: re-relaying an
event after a crash must give the same bytes and hash, so adding a newer schema version must not
silently change what an old event encodes to.

Everything here is a pure function of the stored event and the previous hash, which is why a
re-sent event carries the same ``event_id``, bytes and hash as the first send.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from omium.commands._topics import legacy_topic
from omium.commands.relay.errors import UnmappableEventError
from omium.kernel.serde import AvroSerde, SchemaCatalog

EVENT_ID_NAMESPACE = UUID("8d3c1f0e-6b2a-4e59-9a7d-3f1c5e0b2a64")
"""Namespace of relayed event ids: ``uuid5(EVENT_ID_NAMESPACE, f"{aggregate_id}:{version}")``."""

PayloadBuilder = Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class PayloadMapping:
    """How one domain event class becomes one Avro event type.

    Attributes:
        event_type: The Avro event type (file name of its schema).
        schema_version: The schema version written; pinned so re-sends hash the same.
        payload: Builds the payload record from the domain event.
    """

    event_type: str
    schema_version: int
    payload: PayloadBuilder


def area_mappings(
    aggregate: type[Aggregate], mappings: Mapping[str, PayloadMapping]
) -> dict[str, PayloadMapping]:
    """Key an aggregate's mappings by the topic its events are stored under.

    Args:
        aggregate: The aggregate class.
        mappings: Domain event class name (``"StepStarted"``) to its mapping.

    Returns:
        Stored topic (``omium.commands.executions.domain:Execution.StepStarted``) to mapping.

    Raises:
        LookupError: A name is not an event class of the aggregate; checked at import so a
            renamed domain event fails every test instead of dead-lettering in production.
    """
    keyed = {}
    for name, mapping in mappings.items():
        event_class = vars(aggregate).get(name)
        if not isinstance(event_class, type):
            raise LookupError(f"{aggregate.__name__} has no event class {name!r}")
        topic = get_topic(event_class)
        keyed[topic] = mapping
        # Stores written before the omium.* namespace hold the old topic (commands._topics).
        old = legacy_topic(topic)
        if old is not None:
            keyed[old] = mapping
    return keyed


def event_id_for(aggregate_id: UUID | str, aggregate_version: int) -> UUID:
    """The relayed event's id: the same for every send of the same stored event."""
    return uuid5(EVENT_ID_NAMESPACE, f"{aggregate_id}:{aggregate_version}")


def json_text(value: Any) -> str:
    """Deterministic JSON text (sorted keys, no spaces), so re-sends encode identically."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of a text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def float_map(values: Mapping[str, Any] | None) -> dict[str, float]:
    """A ``map<double>`` with sorted keys (JSON may hand back ints for whole numbers)."""
    items = dict(values or {})
    return {key: float(items[key]) for key in sorted(items)}


def string_list(value: Any) -> list[str]:
    """``value`` if it is a list of strings, else an empty list (free-form definition keys)."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    return []


@dataclass(frozen=True)
class EncodedEvent:
    """A relayed event ready for Kafka.

    Attributes:
        event: The Avro event (envelope, payload, ``hash``).
        area: The topic suffix of its event type.
        value: The Avro single-object encoded message.
    """

    event: dict[str, Any]
    area: str
    value: bytes

    @property
    def hash(self) -> str:
        """The event's hash: the next event's ``prev_hash``."""
        return str(self.event["hash"])


class EventEncoder:
    """Turns decoded domain events into hashed, encoded Avro events.

    Args:
        catalog: The schemas to write with.
        mappings: Stored topic to mapping; every area's by default.
    """

    def __init__(
        self, catalog: SchemaCatalog, mappings: Mapping[str, PayloadMapping] | None = None
    ) -> None:
        """Check every mapping names a schema in the catalog (a missing one is a deploy bug)."""
        if mappings is None:
            from omium.commands.relay._map_all import ALL_MAPPINGS

            mappings = ALL_MAPPINGS
        self._catalog = catalog
        self._serde = AvroSerde(catalog)
        self._mappings = dict(mappings)
        for mapping in self._mappings.values():
            catalog.get(mapping.event_type, mapping.schema_version)

    @property
    def topics(self) -> Iterable[str]:
        """The stored topics this encoder maps."""
        return self._mappings.keys()

    def mapping_for(self, topic: str) -> PayloadMapping | None:
        """The mapping of a stored topic, if there is one."""
        return self._mappings.get(topic)

    def encode(self, domain_event: Any, *, topic: str, prev_hash: str) -> EncodedEvent:
        """Map, hash and encode one domain event.

        Args:
            domain_event: The event as the application's mapper decoded it.
            topic: The stored event's topic (selects the mapping).
            prev_hash: Hash of the aggregate's previous relayed event, or ``""`` for the first.

        Returns:
            The encoded event.

        Raises:
            UnmappableEventError: No mapping, or the mapping or encoding failed. Any exception
                here is a bug in a mapping or a schema, never a transient fault, so the caller
                dead-letters the event instead of retrying it.
        """
        aggregate_id = str(getattr(domain_event, "originator_id", "?"))
        version = getattr(domain_event, "originator_version", -1)

        def unmappable(message: str) -> UnmappableEventError:
            return UnmappableEventError(
                message, topic=topic, aggregate_id=aggregate_id, aggregate_version=version
            )

        mapping = self._mappings.get(topic)
        if mapping is None:
            raise unmappable("no Avro mapping for this domain event")
        try:
            event = self._envelope(domain_event, mapping, prev_hash)
            # What new_event() then serde.encode() do, with the event checked and written
            # once instead of three and two times (they were most of the relay's time).
            value = self._serde.seal(event)
        except Exception as exc:  # a bug in a mapping or schema: reported, dead-lettered
            raise unmappable(f"{type(exc).__name__}: {exc}") from exc
        return EncodedEvent(event, self._catalog.area_of(mapping.event_type), value)

    def _envelope(
        self, domain_event: Any, mapping: PayloadMapping, prev_hash: str
    ) -> dict[str, Any]:
        """The envelope ``new_event`` builds, ``hash`` still empty (filled by ``encode``)."""
        timestamp: datetime = domain_event.timestamp
        return {
            "event_id": event_id_for(domain_event.originator_id, domain_event.originator_version),
            "event_type": mapping.event_type,
            "schema_version": mapping.schema_version,
            "tenant_id": domain_event.tenant_id,
            "aggregate_id": str(domain_event.originator_id),
            "aggregate_version": domain_event.originator_version,
            "occurred_at": timestamp,
            # Domain events carry no causation or correlation ids yet.
            "causation_id": None,
            "correlation_id": None,
            "prev_hash": prev_hash,
            "hash": "",
            "payload": dict(mapping.payload(domain_event)),
        }
