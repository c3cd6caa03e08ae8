"""What the gateway's command routes and write-side queries answer, as pydantic models.

Unknown fields are kept (``extra="allow"``), so a newer gateway that adds fields does not break
an older client.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Role = Literal["viewer", "developer", "operator", "admin"]


class ApiModel(BaseModel):
    """Base of every response model: frozen, tolerant of fields added later."""

    model_config = ConfigDict(extra="allow", frozen=True)


# --- accepted commands ------------------------------------------------------------------------


class Accepted(ApiModel):
    """An accepted command: the aggregate's new version and the events it recorded."""

    version: int
    events: list[str]


class WorkflowAccepted(Accepted):
    """A registered workflow or a published definition version."""

    workflow_id: str
    definition_version: int


class ExecutionAccepted(Accepted):
    """An accepted command on a run."""

    execution_id: str


class CheckpointAccepted(Accepted):
    """A recorded checkpoint."""

    execution_id: str
    checkpoint_id: str


class ForkAccepted(ExecutionAccepted):
    """A fork: ``execution_id`` is the new run; where it comes from and its first checkpoint."""

    parent_execution_id: str
    forked_from_checkpoint_id: str
    checkpoint_id: str


class RoundAccepted(Accepted):
    """An accepted command on a consensus round."""

    round_id: str


class RoundDecision(RoundAccepted):
    """The answer to ``decide``: the round's status and, once decided, its decision."""

    status: str
    decision: str | None
    reason: str | None
    tally: dict[str, Any]


class PolicyAccepted(Accepted):
    """A published policy version."""

    policy_id: str
    policy_version: int
    package: str


# --- write-side views -------------------------------------------------------------------------


class Workflow(ApiModel):
    """A workflow and one of its definition versions."""

    workflow_id: str
    name: str
    definition_version: int
    latest_version: int
    definition: dict[str, Any]
    registered_at: datetime
    modified_at: datetime
    version: int


class Step(ApiModel):
    """One step of a run (``scheduled``, ``running``, ``completed`` or ``failed``)."""

    step_id: str
    status: str
    agent: str | None
    attempts: int
    output: dict[str, Any] | None
    error: str | None


class Approval(ApiModel):
    """A human approval gating one step (``pending``, ``granted`` or ``rejected``)."""

    step_id: str
    status: str
    deadline: datetime
    default_action: str
    prompt: str | None
    decided_by: str | None
    comment: str | None
    by_default: bool
    approvers: list[str] = []
    approver_role: str | None = None
    escalation: dict[str, Any] | None = None
    """Who decides after the deadline, for ``default_action`` ``escalate``."""
    escalated_at: datetime | None = None
    """When the approval passed to its escalation's deciders (approvers, role, deadline and
    default are the escalation's since)."""


class Checkpoint(ApiModel):
    """A checkpoint's description; ``inline_state`` (base64) only when read on its own."""

    checkpoint_id: str
    step_id: str
    position: str
    checksum: str
    size: int
    storage: str
    object_key: str | None
    sequence: int
    inline_state: str | None = None
    state: str = "available"
    """``available``, or ``pruned``: retention let its state go (the record stays; rolling back
    to it, forking from it or reading it fails with a 410 ``checkpoint-pruned`` problem)."""
    created_at: datetime | None = None

    def state_bytes(self) -> bytes | None:
        """The decoded inline state (``None`` for object storage or a listed checkpoint)."""
        return None if self.inline_state is None else base64.b64decode(self.inline_state)


class Execution(ApiModel):
    """A run as the write side knows it (always current: read your own writes here)."""

    execution_id: str
    workflow_id: str
    workflow_version: int
    input: dict[str, Any]
    state: str
    steps: list[Step]
    checkpoints: list[Checkpoint]
    approvals: list[Approval]
    rollbacks: int
    outcome: dict[str, Any]
    started_at: datetime
    modified_at: datetime
    version: int
    parent_execution_id: str | None = None
    forked_from_checkpoint_id: str | None = None

    @property
    def ended(self) -> bool:
        """Whether the run is over (completed, failed, halted or cancelled)."""
        return self.state in TERMINAL_STATES


TERMINAL_STATES = frozenset({"completed", "failed", "halted", "cancelled"})
"""States a run never leaves."""


class ConsensusRound(ApiModel):
    """A consensus round with its votes and, once decided, its decision."""

    round_id: str
    participants: list[str]
    rule: str
    weights: dict[str, float] | None
    threshold: float | None
    k: int | None
    deadline: datetime
    subject: str | None
    execution_id: str | None
    votes: dict[str, Any]
    status: str
    decision: str | None
    failure_reason: str | None
    tally: dict[str, Any]
    version: int


class Policy(ApiModel):
    """One version of a policy (a Rego module with its enforcement mode)."""

    policy_id: str
    name: str
    policy_version: int
    latest_version: int
    module: str
    module_sha256: str
    package: str
    mode: str
    description: str | None
    created_at: datetime
    modified_at: datetime
    version: int


class ApiKey(ApiModel):
    """An API key's description (never its secret)."""

    key_id: str
    tenant_id: str
    name: str
    role: Role
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class IssuedApiKey(ApiKey):
    """A new API key: ``key`` is the plaintext, shown only this once."""

    key: str


class WhoAmI(ApiModel):
    """The caller as the gateway sees it."""

    subject: str
    tenant_id: str
    roles: list[Role]
    role: Role | None
    method: str
    key_id: str | None


class Readiness(ApiModel):
    """``/ready``: ``checks`` maps each dependency to ``ok`` or what is wrong with it."""

    status: str
    checks: dict[str, str]


class Limits(ApiModel):
    """Concurrency limits of one level (the tenant, or one workflow); ``None``: unlimited."""

    max_running_executions: int | None = None
    max_concurrent_steps: int | None = None


class TenantLimits(Limits):
    """The tenant's concurrency limits (``version`` 0: never set)."""

    workflows: dict[str, Limits] = {}
    version: int = 0
    modified_at: datetime | None = None


class LimitsAccepted(ApiModel):
    """Limits set: the version they have now and the events written."""

    version: int
    events: list[str]
