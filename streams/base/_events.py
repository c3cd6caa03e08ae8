"""Building the events and commands processors emit.

Every output is its own one-event history (``aggregate_version`` 1, genesis ``prev_hash``,
``aggregate_id`` equal to its ``event_id``), as the gateway's audit entries are: the aggregate
that a decision is about (a round, a run) already has its own hash chain written by the command
side, which a processor must not extend. What the output is about is in its payload, its Kafka key
and its ``correlation_id``.

Output ids are derived (UUIDv5) from what caused them, so processing the same input again yields
the same ids, and a consumer can deduplicate on ``event_id`` whatever happens upstream.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from omium.kernel.events import GENESIS_HASH, new_event
from omium.kernel.serde import SchemaCatalog

STREAMS_NAMESPACE = uuid.UUID("8a6f6d2e-4f7c-5b1e-9d0a-6f6d69756d73")
"""Namespace of the UUIDv5 ids that processors derive."""

COMMAND_ISSUED = "CommandIssued"
"""Event type of the messages on ``<prefix>.commands``."""


def derived_id(*parts: object) -> uuid.UUID:
    """A stable id for an output, from what caused it (same parts, same id)."""
    return uuid.uuid5(STREAMS_NAMESPACE, "/".join(str(part) for part in parts))


def output_event(
    event_type: str,
    *,
    event_id: uuid.UUID,
    tenant_id: str,
    payload: Mapping[str, Any],
    occurred_at: datetime,
    causation_id: str | uuid.UUID | None = None,
    correlation_id: str | uuid.UUID | None = None,
    catalog: SchemaCatalog | None = None,
) -> dict[str, Any]:
    """A validated, hashed one-event history of ``event_type``.

    Raises:
        SchemaValidationError: The payload does not match the event type's latest schema.
    """
    return new_event(
        event_type,
        tenant_id=tenant_id,
        aggregate_id=event_id,
        aggregate_version=1,
        payload=payload,
        prev_hash=GENESIS_HASH,
        causation_id=causation_id,
        correlation_id=correlation_id,
        occurred_at=occurred_at,
        event_id=event_id,
        catalog=catalog,
    )


def command_event(
    command: str,
    *,
    command_id: uuid.UUID,
    tenant_id: str,
    target_id: str | uuid.UUID,
    args: Mapping[str, Any],
    issued_by: str,
    occurred_at: datetime,
    reason: str | None = None,
    causation_id: str | uuid.UUID | None = None,
    correlation_id: str | uuid.UUID | None = None,
    catalog: SchemaCatalog | None = None,
) -> dict[str, Any]:
    """A ``CommandIssued`` event asking the command worker to apply ``command`` once.

    Args:
        command: ``<application>.<handler>``, e.g. ``executions.halt_execution``.
        command_id: Idempotency key (derive it from the cause, see :func:`derived_id`).
        tenant_id: Tenant the target belongs to.
        target_id: The aggregate addressed; also the Kafka key.
        args: Keyword arguments of the handler (JSON-compatible).
        issued_by: The issuing component.
        occurred_at: When it was issued.
        reason: Why, for operators.
        causation_id: The event that caused it.
        correlation_id: Propagated correlation id.
        catalog: Schemas to validate with.
    """
    payload = {
        "command_id": str(command_id),
        "command": command,
        "target_id": str(target_id),
        "args": json.dumps(dict(args), sort_keys=True, default=str),
        "issued_by": issued_by,
        "reason": reason,
    }
    return output_event(
        COMMAND_ISSUED,
        event_id=command_id,
        tenant_id=tenant_id,
        payload=payload,
        occurred_at=occurred_at,
        causation_id=causation_id,
        correlation_id=correlation_id,
        catalog=catalog,
    )
