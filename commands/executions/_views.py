"""Read-only views of an execution, as the queries return them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from omium.commands.executions._records import ApprovalRecord, CheckpointRecord, StepRecord
from omium.commands.executions.domain import Execution


@dataclass(frozen=True)
class StepView:
    """One step: status, attempts so far, output or last error."""

    step_id: str
    status: str
    agent: str | None
    attempts: int
    output: dict[str, Any] | None
    error: str | None

    @classmethod
    def of(cls, step: StepRecord) -> StepView:
        """View of a step record."""
        return cls(
            step.step_id, step.status.value, step.agent, step.attempts, step.output, step.error
        )


@dataclass(frozen=True)
class CheckpointView:
    """A checkpoint's description; ``inline_state`` is only filled by ``get_checkpoint``.

    ``state`` is ``available``, or ``pruned`` once retention let its state go (the record
    stays; nothing may restore it).
    """

    checkpoint_id: str
    step_id: str
    position: str
    checksum: str
    size: int
    storage: str
    object_key: str | None
    sequence: int
    inline_state: bytes | None = None
    state: str = "available"
    created_at: datetime | None = None

    @classmethod
    def of(cls, checkpoint: CheckpointRecord, *, with_state: bool = False) -> CheckpointView:
        """View of a checkpoint record, with its inline state if asked for."""
        return cls(
            checkpoint_id=checkpoint.checkpoint_id,
            step_id=checkpoint.step_id,
            position=checkpoint.position.value,
            checksum=checkpoint.checksum,
            size=checkpoint.size,
            storage=checkpoint.storage.value,
            object_key=checkpoint.object_key,
            sequence=checkpoint.sequence,
            inline_state=checkpoint.inline_state if with_state else None,
            state="pruned" if checkpoint.pruned else "available",
            created_at=checkpoint.created_at,
        )


@dataclass(frozen=True)
class ApprovalView:
    """A human approval gating one step."""

    step_id: str
    status: str
    deadline: datetime
    default_action: str
    prompt: str | None
    decided_by: str | None
    comment: str | None
    by_default: bool
    approvers: tuple[str, ...] = ()
    approver_role: str | None = None
    escalation: dict[str, Any] | None = None
    escalated_at: datetime | None = None

    @classmethod
    def of(cls, approval: ApprovalRecord) -> ApprovalView:
        """View of an approval record."""
        return cls(
            step_id=approval.step_id,
            status=approval.status.value,
            deadline=approval.deadline,
            default_action=approval.default_action.value,
            prompt=approval.prompt,
            decided_by=approval.decided_by,
            comment=approval.comment,
            by_default=approval.by_default,
            approvers=tuple(approval.approvers),
            approver_role=approval.approver_role,
            escalation=None if approval.escalation is None else approval.escalation.to_dict(),
            escalated_at=approval.escalated_at,
        )


@dataclass(frozen=True)
class ExecutionView:
    """A run as queries return it.

    Attributes:
        state: One of ``pending``, ``running``, ``waiting_for_approval``, ``completed``,
            ``failed``, ``halted``, ``cancelled``.
        outcome: Output / error / halt or cancel reason once the run is over, else empty.
        version: The aggregate version (for ``expected_version``).
        parent_execution_id: The run this one was forked from, if it is a fork.
        forked_from_checkpoint_id: The parent's checkpoint the fork started from.
    """

    id: UUID
    tenant_id: str
    workflow_id: UUID
    workflow_version: int
    input: dict[str, Any]
    state: str
    steps: tuple[StepView, ...]
    checkpoints: tuple[CheckpointView, ...]
    approvals: tuple[ApprovalView, ...]
    rollbacks: int
    outcome: dict[str, Any]
    started_at: datetime
    modified_at: datetime
    version: int
    parent_execution_id: UUID | None = None
    forked_from_checkpoint_id: str | None = None

    @classmethod
    def of(cls, execution: Execution) -> ExecutionView:
        """View of an execution aggregate."""
        return cls(
            id=execution.id,
            tenant_id=execution.tenant_id,
            workflow_id=execution.workflow_id,
            workflow_version=execution.workflow_version,
            input=execution.input,
            state=execution.state.value,
            steps=tuple(StepView.of(s) for s in execution.steps.values()),
            checkpoints=tuple(CheckpointView.of(c) for c in execution.checkpoints.values()),
            approvals=tuple(ApprovalView.of(a) for a in execution.approvals.values()),
            rollbacks=execution.rollbacks,
            outcome=dict(execution.outcome),
            started_at=execution.created_on,
            modified_at=execution.modified_on,
            version=execution.version,
            parent_execution_id=execution.parent_execution_id,
            forked_from_checkpoint_id=execution.forked_from_checkpoint_id,
        )
