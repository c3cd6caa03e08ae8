"""Builders of the input events the processors read, as the relay or a worker would publish them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from omium.testing.samples import sample_event

TENANT = "tenant-streams"


def round_opened(
    round_id: uuid.UUID,
    participants: list[str],
    *,
    rule: str = "majority",
    deadline_in_s: float = 60.0,
    weights: dict[str, float] | None = None,
    threshold: float | None = None,
    k: int | None = None,
    tenant_id: str = TENANT,
) -> dict[str, Any]:
    """A ``ConsensusRoundOpened`` event for ``round_id``."""
    payload = {
        "execution_id": None,
        "step_id": None,
        "question": "ship it?",
        "options": [],
        "participants": participants,
        "weights": weights or {},
        "rule": rule,
        "threshold": threshold,
        "k": k,
        "deadline": datetime.now(UTC) + timedelta(seconds=deadline_in_s),
    }
    return sample_event(
        "ConsensusRoundOpened",
        aggregate_id=round_id,
        payload=payload,
        tenant_id=tenant_id,
        event_id=uuid.uuid4(),
    )


def vote(
    round_id: uuid.UUID,
    voter: str,
    decision: str,
    *,
    at: datetime | None = None,
    event_id: uuid.UUID | None = None,
    tenant_id: str = TENANT,
) -> dict[str, Any]:
    """A ``VoteCast`` event of ``voter`` in ``round_id``."""
    payload = {
        "voter": voter,
        "decision": decision,
        "weight": 1.0,
        "confidence": None,
        "rationale": None,
    }
    return sample_event(
        "VoteCast",
        aggregate_id=round_id,
        payload=payload,
        tenant_id=tenant_id,
        occurred_at=at or datetime.now(UTC),
        event_id=event_id or uuid.uuid4(),
    )
