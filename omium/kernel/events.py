"""The event envelope and the hash chain that makes an aggregate's history tamper-evident.

Every event carries ``prev_hash`` (the hash of its aggregate's previous event, ``""`` for the
first) and ``hash``::

    hash = sha256(prev_hash.encode("utf-8") + canonical_body).hexdigest()

where ``canonical_body`` is the schemaless Avro encoding of the event, with ``hash`` set to ``""``,
under the writer schema the event names (``event_type`` and ``schema_version``), with map entries
sorted by key (see :meth:`omium.kernel.serde.AvroSerde.canonical_body`). Editing any field of an
event, dropping or reordering events, or re-pointing ``prev_hash`` is then detected by
:func:`verify_chain`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from omium.kernel.errors import OmiumError
from omium.kernel.serde import AvroSerde, SchemaCatalog, default_catalog

GENESIS_HASH = ""
"""``prev_hash`` of the first event of an aggregate."""

FIRST_AGGREGATE_VERSION = 1
"""``aggregate_version`` of the first event of an aggregate (as in the eventsourcing library)."""


class ChainFault(StrEnum):
    """How a hash chain is broken."""

    HASH_MISMATCH = "hash_mismatch"
    """The event's content no longer matches its hash: it was edited."""
    VERSION_GAP = "version_gap"
    """``aggregate_version`` does not follow the previous event: one is missing or moved."""
    BROKEN_LINK = "broken_link"
    """``prev_hash`` is not the previous event's hash: the chain was re-linked."""


class ChainBrokenError(OmiumError):
    """An aggregate's history fails hash-chain verification.

    Attributes:
        fault: What kind of break was found.
        position: Index of the offending event in the sequence given to :func:`verify_chain`.
        aggregate_id: Aggregate whose chain is broken.
        aggregate_version: ``aggregate_version`` of the offending event.
        expected: The value the chain requires (a hash or a version, as text).
        found: The value the event has.
    """

    def __init__(
        self,
        fault: ChainFault,
        *,
        position: int,
        aggregate_id: str,
        aggregate_version: int,
        expected: str,
        found: str,
    ) -> None:
        where = f"aggregate {aggregate_id!r} at position {position} (version {aggregate_version})"
        super().__init__(
            f"hash chain broken: {fault.value} in {where}: {_explain(fault, expected, found)}"
        )
        self.fault = fault
        self.position = position
        self.aggregate_id = aggregate_id
        self.aggregate_version = aggregate_version
        self.expected = expected
        self.found = found


def _explain(fault: ChainFault, expected: str, found: str) -> str:
    if fault is ChainFault.HASH_MISMATCH:
        return f"event content hashes to {expected}, but its hash field is {found}"
    if fault is ChainFault.VERSION_GAP:
        return f"expected aggregate_version {expected}, found {found}"
    if expected == GENESIS_HASH:
        return f"prev_hash is {found!r}, but an aggregate's first event has an empty prev_hash"
    return f"prev_hash is {found!r}, but the previous event's hash is {expected!r}"


@dataclass(frozen=True)
class ChainHead:
    """The last verified event of one aggregate.

    Attributes:
        aggregate_id: The aggregate.
        aggregate_version: Version of its last event.
        hash: Hash of its last event: the next event's ``prev_hash``.
        events: How many of its events were verified.
    """

    aggregate_id: str
    aggregate_version: int
    hash: str
    events: int


@dataclass(frozen=True)
class ChainReport:
    """The result of a successful :func:`verify_chain`.

    Attributes:
        events: How many events were verified.
        heads: The last verified event of each aggregate, by aggregate id. Compare a head with
            the aggregate's known latest version to detect a history cut short at the end.
    """

    events: int
    heads: Mapping[str, ChainHead]


def new_event(
    event_type: str,
    *,
    tenant_id: str,
    aggregate_id: str | uuid.UUID,
    aggregate_version: int,
    payload: Mapping[str, Any],
    prev_hash: str,
    causation_id: str | uuid.UUID | None = None,
    correlation_id: str | uuid.UUID | None = None,
    occurred_at: datetime | None = None,
    event_id: uuid.UUID | None = None,
    schema_version: int | None = None,
    catalog: SchemaCatalog | None = None,
) -> dict[str, Any]:
    """Build a validated, hashed event for an aggregate.

    Args:
        event_type: Name of the event type, e.g. ``"StepCompleted"``.
        tenant_id: Tenant that owns the aggregate.
        aggregate_id: Aggregate the event belongs to (a UUID is stored as its string).
        aggregate_version: Position of the event in the aggregate's history, from 1.
        payload: The payload fields of the event type's schema version.
        prev_hash: Hash of the aggregate's previous event, or :data:`GENESIS_HASH` for the first.
        causation_id: Command or event that caused this one.
        correlation_id: Id shared by everything one request set in motion.
        occurred_at: When it happened (timezone-aware); now, in UTC, by default.
        event_id: The event's id; a new random UUID by default.
        schema_version: Schema version to write; the latest by default.
        catalog: Schemas to validate and hash with; Omium's own (:func:`default_catalog`) by
            default.

    Returns:
        The event as a dict: envelope fields, ``payload``, and ``hash`` filled in.

    Raises:
        SchemaValidationError: The event does not match its schema (names the field).
        UnknownSchemaError: The event type or version is not in the catalog.
    """
    catalog = catalog or default_catalog()
    event: dict[str, Any] = {
        "event_id": event_id or uuid.uuid4(),
        "event_type": event_type,
        "schema_version": (
            catalog.latest_version(event_type) if schema_version is None else schema_version
        ),
        "tenant_id": tenant_id,
        "aggregate_id": str(aggregate_id),
        "aggregate_version": aggregate_version,
        "occurred_at": occurred_at or datetime.now(UTC),
        "causation_id": None if causation_id is None else str(causation_id),
        "correlation_id": None if correlation_id is None else str(correlation_id),
        "prev_hash": prev_hash,
        "hash": "",
        "payload": dict(payload),
    }
    AvroSerde(catalog).seal(event)  # validates and hashes with one write of the body
    return event


def compute_hash(event: Mapping[str, Any], *, catalog: SchemaCatalog | None = None) -> str:
    """The hash an event must carry, given its content and ``prev_hash``.

    Args:
        event: The event; its ``hash`` field is ignored.
        catalog: Schemas to encode with; Omium's own by default.

    Returns:
        Lowercase hex SHA-256 of ``prev_hash`` (UTF-8) followed by the canonical Avro body.

    Raises:
        SchemaValidationError: The event names no known schema or does not fit it.
    """
    serde = AvroSerde(catalog or default_catalog())
    body = serde.canonical_body({**event, "hash": ""})
    prev_hash = event.get("prev_hash")
    if not isinstance(prev_hash, str):
        prev_hash = ""  # canonical_body already refused a missing or non-string prev_hash
    return hashlib.sha256(prev_hash.encode("utf-8") + body).hexdigest()


def verify_chain(
    events: Iterable[Mapping[str, Any]], *, catalog: SchemaCatalog | None = None
) -> ChainReport:
    """Check the hash chains of one or more aggregates' histories.

    Events of several aggregates may be interleaved; each aggregate's events must come in
    history order and start at its first event. Every event must hash to its ``hash``, follow the
    previous event's ``aggregate_version`` by one and point at its hash with ``prev_hash``.

    Args:
        events: Events as built by :func:`new_event` or returned by ``AvroSerde.decode``.
        catalog: Schemas to encode with; Omium's own by default.

    Returns:
        How many events were verified and the head of each aggregate's chain.

    Raises:
        ChainBrokenError: At the first break, naming its position and kind.
        SchemaValidationError: An event names no known schema or does not fit it.
    """
    catalog = catalog or default_catalog()
    heads: dict[str, ChainHead] = {}
    position = -1
    for position, event in enumerate(events):
        aggregate_id = str(event.get("aggregate_id"))
        heads[aggregate_id] = _verify_link(event, heads.get(aggregate_id), position, catalog)
    return ChainReport(events=position + 1, heads=heads)


def _verify_link(
    event: Mapping[str, Any], head: ChainHead | None, position: int, catalog: SchemaCatalog
) -> ChainHead:
    """Check one event against its aggregate's chain so far; return the new head."""
    aggregate_id, version = str(event.get("aggregate_id")), event.get("aggregate_version")
    stored = str(event.get("hash"))

    def broken(fault: ChainFault, expected: object, found: object) -> ChainBrokenError:
        return ChainBrokenError(
            fault,
            position=position,
            aggregate_id=aggregate_id,
            aggregate_version=version if isinstance(version, int) else -1,
            expected=str(expected),
            found=str(found),
        )

    recomputed = compute_hash(event, catalog=catalog)
    if recomputed != stored:
        raise broken(ChainFault.HASH_MISMATCH, recomputed, stored)
    expected_version = FIRST_AGGREGATE_VERSION if head is None else head.aggregate_version + 1
    if version != expected_version:
        raise broken(ChainFault.VERSION_GAP, expected_version, version)
    expected_prev = GENESIS_HASH if head is None else head.hash
    if event.get("prev_hash") != expected_prev:
        raise broken(ChainFault.BROKEN_LINK, expected_prev, event.get("prev_hash"))
    count = 1 if head is None else head.events + 1
    return ChainHead(aggregate_id, expected_version, stored, count)
