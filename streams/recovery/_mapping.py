"""Decoded events to the recovery processor's records, and plans to ``RecoveryPlanned`` payloads.

Only this module knows the field names of the failure and execution schemas. A failure's
``details`` may carry ``workflow_id`` and ``recovery.<setting>`` overrides (see
:class:`RecoverySettings`), filled in by whoever detected it from the workflow definition.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from omium.streams.recovery._planning import Plan, signature

FAILURE = "failure"
"""Internal record type: a failure to plan for (records without a type are failures too)."""
OUTCOME = "outcome"
"""Internal record type: what became of the plan made for a run's step."""


def run_facts(event: Mapping[str, Any]) -> dict[str, Any]:
    """What ``ExecutionStarted`` / ``CheckpointCreated`` tell about a run."""
    payload = event["payload"]
    if event["event_type"] == "ExecutionStarted":
        return {"workflow": str(payload["workflow_id"])}
    # Checkpoints taken after a step are known good; one taken before it is good as well.
    return {"checkpoint": str(payload["checkpoint_id"])}


def failure_of(event: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a ``FailureDetected`` event the planner uses."""
    payload = event["payload"]
    return {
        "event_id": str(event["event_id"]),
        "tenant_id": event["tenant_id"],
        "correlation_id": event.get("correlation_id"),
        "failure_id": str(payload["failure_id"]),
        "execution_id": str(payload["execution_id"]),
        "step_id": payload.get("step_id"),
        "kind": str(payload["kind"]),
        "message": payload["message"],
        "agent": payload.get("agent"),
        "model": payload.get("model"),
        "details": dict(payload.get("details") or {}),
    }


def regrouped(
    failure: Mapping[str, Any], run: Mapping[str, Any], *, attempts: int
) -> dict[str, Any]:
    """The record forwarded to the by-signature stage."""
    workflow = failure["details"].get("workflow_id") or run.get("workflow")
    return {
        **failure,
        "type": FAILURE,
        "attempts": attempts,
        "workflow": workflow,
        # The failing worker names the checkpoint its attempt started from; the run's newest
        # checkpoint seen on the executions topic is the fallback (that topic may lag).
        "checkpoint": failure["details"].get("checkpoint_id") or run.get("checkpoint"),
        "signature": signature(
            workflow=workflow,
            step=failure["step_id"],
            kind=failure["kind"],
            message=failure["message"],
        ),
    }


def outcome(
    *,
    signature: str,
    execution_id: str,
    step_id: str | None,
    success: bool,
    attempt: int = 0,
    cost_usd: float = 0.0,
    cause: str,
) -> dict[str, Any]:
    """The record telling the by-signature stage what became of a run's step after a plan.

    Args:
        signature: The signature of the failure the plan was made for.
        execution_id: The run.
        step_id: The step.
        success: Whether the step passed (else it failed again or the run ended).
        attempt: The attempt that passed.
        cost_usd: Its LLM cost.
        cause: The event type that told (for logs and tests).
    """
    return {
        "type": OUTCOME,
        "signature": signature,
        "execution_id": execution_id,
        "step_id": step_id,
        "success": success,
        "attempt": attempt,
        "cost_usd": cost_usd,
        "cause": cause,
    }


def completed_step(event: Mapping[str, Any]) -> tuple[str, int, float]:
    """Step id, attempt and cost of a ``StepCompleted`` event."""
    payload = event["payload"]
    return str(payload["step_id"]), int(payload["attempt"]), float(payload.get("cost_usd") or 0.0)


def planned_payload(
    record: Mapping[str, Any], chosen: Plan, *, plan_id: uuid.UUID, similar: int
) -> dict[str, Any]:
    """The ``RecoveryPlanned`` payload."""
    return {
        "plan_id": str(plan_id),
        "failure_id": record["failure_id"],
        "execution_id": record["execution_id"],
        "step_id": record["step_id"],
        "plan": chosen.action,
        "reason": chosen.reason,
        "attempt": record["attempts"] + 1,
        "signature": record["signature"],
        "similar_failure_count": similar,
        "backoff_ms": chosen.backoff_ms,
        "target_checkpoint_id": _uuid_or_none(chosen.checkpoint_id),
        "fallback_agent": chosen.fallback_agent,
        "fallback_model": chosen.fallback_model,
        "decided_by": chosen.decided_by,
        "action_key": chosen.key,
        "default_action_key": chosen.default_key,
        "statistics": [stats.to_record() for stats in chosen.statistics],
    }


def _uuid_or_none(value: str | None) -> str | None:
    # The schema types the field as a UUID; other checkpoint ids travel in the command.
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
