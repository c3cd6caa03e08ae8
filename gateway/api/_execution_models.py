"""Request and response models of ``/api/v1/executions``."""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from omium.commands import CommandResult
from omium.commands.executions import INLINE_STATE_MAX_BYTES, CheckpointView, ExecutionView
from omium.gateway.api._models import (
    DefinitionVersion,
    ErrorText,
    EventNames,
    Flag,
    Identifier,
    JsonObject,
    RequestModel,
    Text,
    VersionAfter,
    VersionedRequest,
    accepted_fields,
)

# Base64 of the largest inline blob; the domain checks the decoded size against ``size``.
_INLINE_STATE_MAX_CHARS = 4 * math.ceil(INLINE_STATE_MAX_BYTES / 3)
_BASE64 = r"^[A-Za-z0-9+/]*={0,2}$"

Sha256Hex = Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9a-f]{64}$")]
ObjectKey = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=1024, pattern=r"^[^\x00-\x1f\x7f]+$"),
]


# --- requests ---------------------------------------------------------------------------------


class StartExecution(RequestModel):
    """A run of one version of one of the tenant's workflows."""

    workflow_id: UUID
    workflow_version: DefinitionVersion = Field(description="The definition version to run.")
    input: JsonObject | None = Field(default=None, description="The run's input.")


class ScheduleStep(VersionedRequest):
    """A step to schedule (again, after a failure: a retry)."""

    step_id: Identifier
    agent: Identifier | None = None


class CompleteStep(VersionedRequest):
    """A running step's output."""

    output: JsonObject | None = None


class FailStep(VersionedRequest):
    """A running step's failed attempt."""

    error: ErrorText
    error_type: Identifier | None = None
    retryable: Flag = True


class CreateCheckpoint(VersionedRequest):
    """A checkpoint of the run's state before or after a step.

    Small state travels inline as base64 (at most 256 KiB decoded); larger state is put in object
    storage first and named by ``object_key``. Inline state must match ``checksum`` and ``size``.
    """

    step_id: Identifier
    position: Literal["before", "after"]
    checksum: Sha256Hex = Field(description="Lowercase hex SHA-256 of the state blob.")
    size: int = Field(strict=True, ge=0, le=2**53, description="Size of the blob in bytes.")
    storage: Literal["inline", "object"]
    inline_state: str | None = Field(
        default=None,
        strict=True,
        max_length=_INLINE_STATE_MAX_CHARS,
        pattern=_BASE64,
        description="The blob, base64 (storage=inline).",
    )
    object_key: ObjectKey | None = Field(default=None, description="storage=object.")
    checkpoint_id: Identifier | None = Field(
        default=None, description="Default: a new random id (returned)."
    )

    @field_validator("inline_state")
    @classmethod
    def _decodable(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                base64.b64decode(value, validate=True)
            except binascii.Error as exc:
                raise ValueError(f"inline_state is not valid base64: {exc}") from None
        return value

    def state_bytes(self) -> bytes | None:
        """The decoded inline state."""
        return None if self.inline_state is None else base64.b64decode(self.inline_state)


class RollBack(VersionedRequest):
    """The checkpoint to roll the run back to."""

    checkpoint_id: Identifier
    reason: Text | None = None


class ForkExecution(RequestModel):
    """Where a fork of a run starts: one of the run's checkpoints, and what to change."""

    checkpoint_id: Identifier = Field(description="The run's checkpoint the fork starts from.")
    workflow_version: DefinitionVersion | None = Field(
        default=None,
        description="The definition version the fork runs (default: the run's). Every step "
        "the fork runs again must be in it.",
    )
    state: JsonObject | None = Field(
        default=None,
        description="An edited state to start from instead of the checkpoint's (stored inline "
        "as canonical JSON, at most 256 KiB). For Omium workflows: "
        '{"outputs": {step: output}, "data": {...}}, as `GET .../checkpoints/{id}` holds it.',
    )

    def state_bytes(self) -> bytes | None:
        """The edited state as canonical JSON (sorted keys, no spaces), or ``None``."""
        if self.state is None:
            return None
        return json.dumps(self.state, sort_keys=True, separators=(",", ":")).encode()


class ApprovalEscalation(RequestModel):
    """Who decides an approval nobody decided by its deadline (``default_action: escalate``)."""

    approvers: list[Identifier] = Field(
        default_factory=list, max_length=100, description="Who decides once escalated."
    )
    approver_role: Literal["viewer", "developer", "operator", "admin"] | None = Field(
        default=None, description="The least role of a decider once escalated."
    )
    timeout_s: float = Field(strict=True, gt=0, le=366 * 86400, description="How long they have.")
    default_action: Literal["approve", "reject"] = Field(
        default="reject", description="Applied when they do not decide in time either."
    )


class RequestApproval(VersionedRequest):
    """Hold a scheduled step until a human decides, or until the deadline."""

    deadline: AwareDatetime = Field(description="With a timezone; in the future.")
    default_action: Literal["approve", "reject", "escalate"] = Field(
        description="Applied at the deadline; escalate: `escalation`'s deciders take over."
    )
    escalation: ApprovalEscalation | None = Field(
        default=None, description="Required by (and only with) default_action escalate."
    )
    prompt: Text | None = None
    approvers: list[Identifier] | None = Field(
        default=None,
        max_length=100,
        description="The principals (token `sub`) who may decide; default: anyone allowed to.",
    )
    approver_role: Literal["viewer", "developer", "operator", "admin"] | None = Field(
        default=None,
        description="The least role a decider must hold (deciding needs operator anyway).",
    )


class DecideApproval(VersionedRequest):
    """A human's decision on an approval (the decider is the caller)."""

    comment: Text | None = None


class CompleteExecution(VersionedRequest):
    """The run's output."""

    output: JsonObject | None = None


class FailExecution(VersionedRequest):
    """Why the run failed."""

    error: ErrorText
    error_type: Identifier | None = None


class HaltExecution(VersionedRequest):
    """Why the run is stopped."""

    reason: Text
    policy_id: Identifier | None = None


class CancelExecution(VersionedRequest):
    """Why the run is cancelled (the requester is the caller)."""

    reason: Text | None = None


# --- answers ----------------------------------------------------------------------------------


class ExecutionAccepted(BaseModel):
    """An accepted command on a run."""

    execution_id: UUID
    version: VersionAfter
    events: EventNames

    @classmethod
    def of(cls, result: CommandResult) -> ExecutionAccepted:
        """The answer for a command result."""
        return cls(execution_id=result.aggregate_id, **accepted_fields(result))


class CheckpointAccepted(BaseModel):
    """A recorded checkpoint."""

    execution_id: UUID
    checkpoint_id: str
    version: VersionAfter
    events: EventNames

    @classmethod
    def of(cls, result: CommandResult) -> CheckpointAccepted:
        """The answer for a command result (the id comes from the stored result)."""
        return cls(
            execution_id=result.aggregate_id,
            checkpoint_id=result.data["checkpoint_id"],
            **accepted_fields(result),
        )


class ForkAccepted(BaseModel):
    """A fork: the new run, and where it comes from."""

    execution_id: UUID = Field(description="The new run.")
    parent_execution_id: UUID
    forked_from_checkpoint_id: str
    checkpoint_id: str = Field(description="The fork's own first checkpoint (its start state).")
    version: VersionAfter
    events: EventNames

    @classmethod
    def of(cls, result: CommandResult) -> ForkAccepted:
        """The answer for a fork's result (ids from the stored result)."""
        return cls(
            execution_id=result.aggregate_id,
            parent_execution_id=UUID(result.data["parent_execution_id"]),
            forked_from_checkpoint_id=result.data["forked_from_checkpoint_id"],
            checkpoint_id=result.data["checkpoint_id"],
            **accepted_fields(result),
        )


class _View(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Step(_View):
    """One step of a run."""

    step_id: str
    status: str = Field(description="scheduled, running, completed or failed.")
    agent: str | None
    attempts: int
    output: JsonObject | None
    error: str | None


class Approval(_View):
    """A human approval gating one step."""

    step_id: str
    status: str = Field(description="pending, granted or rejected.")
    deadline: datetime
    default_action: str
    prompt: str | None
    decided_by: str | None
    comment: str | None
    by_default: bool
    approvers: list[str] = Field(default_factory=list, description="Who may decide (any).")
    approver_role: str | None = None
    escalation: JsonObject | None = Field(
        default=None,
        description="Who decides after the deadline (approvers, approver_role, timeout_s, "
        "default_action), for default_action escalate.",
    )
    escalated_at: datetime | None = Field(
        default=None,
        description="When the deadline passed the approval on to its escalation's deciders; "
        "approvers, approver_role, deadline and default_action are the escalation's since.",
    )


class Checkpoint(_View):
    """A checkpoint's description; ``inline_state`` (base64) only when read on its own."""

    checkpoint_id: str
    step_id: str
    position: str
    checksum: str
    size: int
    storage: str
    object_key: str | None
    sequence: int = Field(description="The run's version when it was taken (orders them).")
    inline_state: str | None = None
    state: str = Field(
        default="available",
        description="available, or pruned: retention let its state go (the record stays, "
        "nothing can roll back to it or restore it; reading it answers 410).",
    )
    created_at: datetime | None = Field(default=None, description="When it was recorded.")

    @classmethod
    def of(cls, view: CheckpointView) -> Checkpoint:
        """The answer for a checkpoint view (inline state as base64)."""
        state = view.inline_state
        return cls(
            checkpoint_id=view.checkpoint_id,
            step_id=view.step_id,
            position=view.position,
            checksum=view.checksum,
            size=view.size,
            storage=view.storage,
            object_key=view.object_key,
            sequence=view.sequence,
            inline_state=None if state is None else base64.b64encode(state).decode("ascii"),
            state=view.state,
            created_at=view.created_at,
        )


class Execution(BaseModel):
    """A run."""

    execution_id: UUID
    workflow_id: UUID
    workflow_version: int
    input: JsonObject
    state: str = Field(
        description="pending, running, waiting_for_approval, completed, failed, "
        "halted or cancelled."
    )
    steps: list[Step]
    checkpoints: list[Checkpoint]
    approvals: list[Approval]
    rollbacks: int
    outcome: JsonObject = Field(description="Output, error or reason once the run is over.")
    started_at: datetime
    modified_at: datetime
    version: int = Field(description="Aggregate version (the ETag), for If-Match.")
    parent_execution_id: UUID | None = Field(
        default=None, description="The run this one was forked from (null: not a fork)."
    )
    forked_from_checkpoint_id: str | None = Field(
        default=None, description="The parent's checkpoint the fork started from."
    )

    @classmethod
    def of(cls, view: ExecutionView) -> Execution:
        """The answer for an execution view."""
        return cls(
            execution_id=view.id,
            workflow_id=view.workflow_id,
            workflow_version=view.workflow_version,
            input=view.input,
            state=view.state,
            steps=[Step.model_validate(step) for step in view.steps],
            checkpoints=[Checkpoint.of(checkpoint) for checkpoint in view.checkpoints],
            approvals=[Approval.model_validate(approval) for approval in view.approvals],
            rollbacks=view.rollbacks,
            outcome=view.outcome,
            started_at=view.started_at,
            modified_at=view.modified_at,
            version=view.version,
            parent_execution_id=view.parent_execution_id,
            forked_from_checkpoint_id=view.forked_from_checkpoint_id,
        )
