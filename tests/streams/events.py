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


BUDGET_POLICY = """package streams.budget
import rego.v1
deny contains msg if {
  input.cost_usd > 1
  msg := sprintf("step cost %v over 1 USD", [input.cost_usd])
}
"""
"""Denies a step that cost over 1 USD (the policy benchmark's and the policy input tests')."""

SECRETS_POLICY = """package streams.secrets
import rego.v1
deny contains "leaks a secret" if contains(input.output, "secret")
"""
"""Denies a step whose output mentions a secret."""


def policy_published(
    name: str,
    module: str,
    *,
    version: int = 1,
    mode: str = "deny",
    targets: list[str] | None = None,
    tenant_id: str = TENANT,
) -> dict[str, Any]:
    """A ``PolicyPublished`` event; the module's package is read from its first line."""
    package = module.strip().splitlines()[0].split()[1]
    payload = {
        "policy_id": name,
        "version": version,
        "rego_package": package,
        "rego_module": module,
        "mode": mode,
        "targets": targets,
        "description": None,
        "published_by": "tests",
    }
    return sample_event(
        "PolicyPublished",
        aggregate_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant_id}/{name}"),
        aggregate_version=version,
        payload=payload,
        tenant_id=tenant_id,
        event_id=uuid.uuid4(),
    )


def step_completed(
    execution_id: uuid.UUID,
    *,
    output: str = '{"answer": 42}',
    cost_usd: float = 0.01,
    tokens: tuple[int, int] = (10, 20),
    step_id: str = "plan",
    tenant_id: str = TENANT,
) -> dict[str, Any]:
    """A ``StepCompleted`` event of ``execution_id``."""
    payload = {
        "step_id": step_id,
        "attempt": 1,
        "output_json": output,
        "duration_ms": 5,
        "tokens_in": tokens[0],
        "tokens_out": tokens[1],
        "cost_usd": cost_usd,
        "model": "scripted",
    }
    return sample_event(
        "StepCompleted",
        aggregate_id=execution_id,
        payload=payload,
        tenant_id=tenant_id,
        event_id=uuid.uuid4(),
    )


def llm_call(
    execution_id: uuid.UUID, *, model: str, output: str = "", tenant_id: str = TENANT
) -> dict[str, Any]:
    """A ``SpanRecorded`` of kind ``llm_call`` in ``execution_id``."""
    base = sample_event("SpanRecorded")["payload"]
    payload = {
        **base,
        "execution_id": execution_id,
        "kind": "llm_call",
        "model": model,
        "attributes": {"output": output},
        "span_id": uuid.uuid4().hex[:16],
    }
    return sample_event(
        "SpanRecorded",
        aggregate_id=execution_id,
        payload=payload,
        tenant_id=tenant_id,
        event_id=uuid.uuid4(),
    )


def failure(
    execution_id: uuid.UUID,
    *,
    kind: str = "exception",
    message: str = "connection reset",
    step_id: str | None = "plan",
    details: dict[str, str] | None = None,
    tenant_id: str = TENANT,
) -> dict[str, Any]:
    """A ``FailureDetected`` event of ``execution_id``."""
    payload = {
        "failure_id": uuid.uuid4(),
        "execution_id": execution_id,
        "step_id": step_id,
        "attempt": 1,
        "kind": kind,
        "message": message,
        "signature": "set-by-detector",
        "agent": "writer",
        "model": "scripted",
        "detected_by": "tests",
        "details": details or {},
    }
    return sample_event(
        "FailureDetected",
        aggregate_id=execution_id,
        payload=payload,
        tenant_id=tenant_id,
        event_id=uuid.uuid4(),
    )


def checkpoint_created(
    execution_id: uuid.UUID, checkpoint_id: str, *, tenant_id: str = TENANT
) -> dict[str, Any]:
    """A ``CheckpointCreated`` event of ``execution_id``."""
    payload = {**sample_event("CheckpointCreated")["payload"], "checkpoint_id": checkpoint_id}
    return sample_event(
        "CheckpointCreated",
        aggregate_id=execution_id,
        payload=payload,
        tenant_id=tenant_id,
        event_id=uuid.uuid4(),
    )
