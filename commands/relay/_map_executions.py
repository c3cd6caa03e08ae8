"""Execution events → Avro (area ``executions``).

Free-form JSON (run input, step and run output) becomes deterministic JSON text. What the domain
does not record (durations, worker ids, approval ids, who cancelled) is null, never guessed;
telemetry supplies durations on ``omium.traces``. A step's token counts and cost are the sums
its worker recorded on ``StepCompleted``. A halted run is
not resumable: ``halted`` is a terminal state of the execution state machine.
"""

from __future__ import annotations

from typing import Any

from omium.commands.executions import Execution
from omium.commands.relay._mapping import PayloadMapping, area_mappings, json_text


def execution_started(event: Any) -> dict[str, Any]:
    """``ExecutionStarted``: the workflow version, the input and the budget (none recorded on
    runs started before budgets were)."""
    return {
        "workflow_id": event.workflow_id,
        "workflow_version": event.workflow_version,
        "input_json": json_text(event.input),
        "trigger": None,
        "parent_execution_id": None,
        "forked_from_checkpoint_id": None,
        "started_by": None,
        "max_cost_usd": getattr(event, "max_cost_usd", None),
        "max_tokens": getattr(event, "max_tokens", None),
        "labels": {},
    }


def execution_forked(event: Any) -> dict[str, Any]:
    """``ExecutionForked`` → ``ExecutionStarted`` v2 with trigger ``fork`` and where it starts.

    ``forked_from_checkpoint_id`` (a UUID field of v1) stays null: checkpoint ids are not always
    UUIDs, so the parent's checkpoint is named in ``fork.checkpoint_id``.
    """
    return {
        **execution_started(event),
        "trigger": "fork",
        "parent_execution_id": event.parent_execution_id,
        "fork": {
            "checkpoint_id": event.forked_from_checkpoint_id,
            "checkpoint_step_id": event.checkpoint_step_id,
            "checkpoint_position": event.checkpoint_position,
            "parent_workflow_version": event.parent_workflow_version,
            "state_edited": bool(event.state_edited),
            "start_checkpoint_id": event.start_checkpoint_id,
            "steps": [
                {
                    "step_id": step["step_id"],
                    "status": step["status"],
                    "agent": step.get("agent"),
                    "output_json": _json_or_none(step.get("output")),
                }
                for step in event.steps
            ],
        },
    }


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json_text(value)


def step_scheduled(event: Any) -> dict[str, Any]:
    """``StepScheduled``: the step and, when given, its agent."""
    return {
        "step_id": event.step_id,
        "attempt": None,
        "agent": event.agent,
        "input_json": None,
        "depends_on": [],
        "branch": None,
        "timeout_ms": None,
    }


def step_started(event: Any) -> dict[str, Any]:
    """``StepStarted``: the step and its attempt number."""
    return {"step_id": event.step_id, "attempt": event.attempt, "worker_id": None, "agent": None}


def step_completed(event: Any) -> dict[str, Any]:
    """``StepCompleted`` (v2): the attempt's output (``"null"`` when it had none) and what its
    LLM calls used (0 on steps completed before the worker reported it)."""
    return {
        "step_id": event.step_id,
        "attempt": event.attempt,
        "output_json": json_text(event.output),
        "duration_ms": None,
        "tokens_in": int(getattr(event, "tokens_in", 0) or 0),
        "tokens_out": int(getattr(event, "tokens_out", 0) or 0),
        "cost_usd": float(getattr(event, "cost_usd", 0.0) or 0.0),
        "model": getattr(event, "model", None),
    }


def step_failed(event: Any) -> dict[str, Any]:
    """``StepFailed``: the error of the attempt and whether it may be retried."""
    return {
        "step_id": event.step_id,
        "attempt": event.attempt,
        "error_type": event.error_type,
        "error_message": event.error,
        "retryable": bool(event.retryable),
        "duration_ms": None,
        "failure_id": None,
        "stack_trace": None,
    }


def checkpoint_created(event: Any) -> dict[str, Any]:
    """``CheckpointCreated``: where the state blob is and its checksum."""
    return {
        "checkpoint_id": event.checkpoint_id,
        "step_id": event.step_id,
        "attempt": None,
        "position": event.position,
        "checksum_sha256": event.checksum,
        "size_bytes": event.size,
        "storage": event.storage,
        "inline_state": event.inline_state,
        "object_key": event.object_key,
        "parent_checkpoint_id": None,
    }


def checkpoints_pruned(event: Any) -> dict[str, Any]:
    """``CheckpointsPruned``: which checkpoints went (ids, checksums) and under which rule."""
    return {
        "checkpoints": [
            {
                "checkpoint_id": pruned["checkpoint_id"],
                "step_id": pruned["step_id"],
                "checksum_sha256": pruned["checksum"],
                "size_bytes": pruned["size"],
                "storage": pruned["storage"],
                "object_key": pruned.get("object_key"),
            }
            for pruned in event.checkpoints
        ],
        "keep_last": event.keep_last,
        "max_age_s": event.max_age_s,
        "pruned_at": event.pruned_at,
    }


def execution_rolled_back(event: Any) -> dict[str, Any]:
    """``ExecutionRolledBack``: the checkpoint, its step and position."""
    return {
        "checkpoint_id": event.checkpoint_id,
        "resume_step_id": event.step_id,
        "position": event.position,
        "reason": event.reason,
        "discarded_step_ids": [],
        "recovery_plan_id": None,
        "requested_by": None,
    }


def approval_requested(event: Any) -> dict[str, Any]:
    """``HumanApprovalRequested``: the gated step, its deadline and default action."""
    return {
        "approval_id": None,
        "step_id": event.step_id,
        "prompt": event.prompt,
        "context_json": None,
        # Stored before approvers existed: none, as these requests were always mapped.
        "approvers": list(getattr(event, "approvers", None) or []),
        "deadline": event.deadline,
        "default_action": event.default_action,
        "branch": None,
        "approver_role": getattr(event, "approver_role", None),
        "escalation": _escalation(getattr(event, "escalation", None)),
    }


def _escalation(escalation: dict[str, Any] | None) -> dict[str, Any] | None:
    if escalation is None:
        return None
    return {
        "approvers": list(escalation.get("approvers") or []),
        "approver_role": escalation.get("approver_role"),
        "timeout_ms": round(float(escalation["timeout_s"]) * 1000),
        "default_action": escalation["default_action"],
    }


def approval_escalated(event: Any) -> dict[str, Any]:
    """``HumanApprovalEscalated``: who decides from now on, the new deadline and default."""
    return {
        "approval_id": None,
        "step_id": event.step_id,
        "approvers": list(event.approvers),
        "approver_role": event.approver_role,
        "previous_deadline": event.previous_deadline,
        "escalated_at": event.escalated_at,
        "deadline": event.deadline,
        "default_action": event.default_action,
    }


def approval_granted(event: Any) -> dict[str, Any]:
    """``HumanApprovalGranted``: who decided (``system:deadline`` for a default)."""
    return {
        "approval_id": None,
        "step_id": event.step_id,
        "decided_by": event.decided_by,
        "by_default": bool(event.by_default),
        "comment": event.comment,
    }


def approval_rejected(event: Any) -> dict[str, Any]:
    """``HumanApprovalRejected``: the approver's comment is the rejection's reason."""
    return {
        "approval_id": None,
        "step_id": event.step_id,
        "decided_by": event.decided_by,
        "by_default": bool(event.by_default),
        "reason": event.comment,
    }


def execution_completed(event: Any) -> dict[str, Any]:
    """``ExecutionCompleted``: the run's output."""
    return {
        "output_json": json_text(event.output),
        "duration_ms": None,
        "steps_completed": None,
        "total_tokens": None,
        "total_cost_usd": None,
    }


def execution_failed(event: Any) -> dict[str, Any]:
    """``ExecutionFailed``: the error that ended the run."""
    return {
        "error_type": event.error_type,
        "error_message": event.error,
        "failed_step_id": None,
        "failure_id": None,
        "duration_ms": None,
    }


def execution_halted(event: Any) -> dict[str, Any]:
    """``ExecutionHalted``: a halt naming a policy was that policy's doing."""
    return {
        "reason": event.reason,
        "halted_by": "policy" if event.policy_id else None,
        "policy_id": event.policy_id,
        "step_id": None,
        "resumable": False,
    }


def execution_cancelled(event: Any) -> dict[str, Any]:
    """``ExecutionCancelled``: who asked, and why."""
    return {"cancelled_by": event.requested_by, "reason": event.reason}


MAPPINGS = area_mappings(
    Execution,
    {
        "ExecutionStarted": PayloadMapping("ExecutionStarted", 1, execution_started),
        "ExecutionForked": PayloadMapping("ExecutionStarted", 2, execution_forked),
        "StepScheduled": PayloadMapping("StepScheduled", 1, step_scheduled),
        "StepStarted": PayloadMapping("StepStarted", 1, step_started),
        "StepCompleted": PayloadMapping("StepCompleted", 2, step_completed),
        "StepFailed": PayloadMapping("StepFailed", 1, step_failed),
        "CheckpointCreated": PayloadMapping("CheckpointCreated", 1, checkpoint_created),
        "ExecutionRolledBack": PayloadMapping("ExecutionRolledBack", 1, execution_rolled_back),
        "CheckpointsPruned": PayloadMapping("CheckpointsPruned", 1, checkpoints_pruned),
        "HumanApprovalRequested": PayloadMapping("HumanApprovalRequested", 2, approval_requested),
        "HumanApprovalEscalated": PayloadMapping("HumanApprovalEscalated", 1, approval_escalated),
        "HumanApprovalGranted": PayloadMapping("HumanApprovalGranted", 1, approval_granted),
        "HumanApprovalRejected": PayloadMapping("HumanApprovalRejected", 1, approval_rejected),
        "ExecutionCompleted": PayloadMapping("ExecutionCompleted", 1, execution_completed),
        "ExecutionFailed": PayloadMapping("ExecutionFailed", 1, execution_failed),
        "ExecutionHalted": PayloadMapping("ExecutionHalted", 1, execution_halted),
        "ExecutionCancelled": PayloadMapping("ExecutionCancelled", 1, execution_cancelled),
    },
)
"""Stored topic → mapping for every ``Execution`` event."""
