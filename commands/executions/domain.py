"""The Execution aggregate: one run of a workflow, as an explicit state machine.

Each public command method checks the state machine (``_states.py``) and its arguments, then
calls the private ``@event`` method whose body only applies the change. Event bodies never
validate: they also run when the run is rebuilt from stored events, and a rule tightened later
must not make old history unreadable.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from commands._domain import TenantScoped
from commands.errors import InvalidCommandError
from commands.executions._records import (
    ApprovalAction,
    ApprovalRecord,
    ApprovalStatus,
    CheckpointPosition,
    CheckpointRecord,
    CheckpointStorage,
    StepRecord,
    StepStatus,
    check_checkpoint_blob,
    check_choice,
    check_text,
    json_object_copy,
)
from commands.executions._states import ExecutionState, check_transition

SYSTEM_DEADLINE = "system:deadline"
"""``decided_by`` of an approval resolved by its default action at the deadline."""


class Execution(TenantScoped, Aggregate):
    """One run of one workflow version.

    Attributes:
        tenant_id: Owning tenant.
        workflow_id: The workflow being run.
        workflow_version: The definition version being run.
        input: The run's input.
        state: Current :class:`ExecutionState`.
        steps: Steps by id.
        checkpoints: Checkpoints by id, in creation order.
        approvals: Human approvals by the step they gate.
        attempt_counts: Times each step was started; never decreases, not even on rollback.
        outcome: How the run ended (output, error, halt reason ...), once terminal.
    """

    @classmethod
    def start(
        cls,
        *,
        tenant_id: str,
        workflow_id: UUID,
        workflow_version: int,
        input: dict[str, Any] | None = None,
    ) -> Execution:
        """Start a run; it is ``pending`` until its first step starts.

        Raises:
            InvalidCommandError: A bad workflow version or input.
        """
        if isinstance(workflow_version, bool) or not isinstance(workflow_version, int):
            raise _invalid("workflow_version must be an integer", "invalid_workflow_version")
        if workflow_version < 1:
            raise _invalid("workflow_version must be at least 1", "invalid_workflow_version")
        return cls(
            tenant_id=tenant_id,
            workflow_id=workflow_id,
            workflow_version=workflow_version,
            input=json_object_copy({} if input is None else input, "input"),
        )

    @event("ExecutionStarted")
    def __init__(
        self, *, tenant_id: str, workflow_id: UUID, workflow_version: int, input: dict[str, Any]
    ) -> None:
        """Apply ``ExecutionStarted``: a pending run with no steps yet."""
        self.tenant_id = tenant_id
        self.workflow_id = workflow_id
        self.workflow_version = workflow_version
        self.input = input
        self.state = ExecutionState.PENDING
        self.steps: dict[str, StepRecord] = {}
        self.checkpoints: dict[str, CheckpointRecord] = {}
        self.approvals: dict[str, ApprovalRecord] = {}
        self.attempt_counts: dict[str, int] = {}
        self.rollbacks = 0
        self.outcome: dict[str, Any] = {}

    # Steps -------------------------------------------------------------------------------

    def schedule_step(self, step_id: str, *, agent: str | None = None) -> None:
        """Schedule a step to run; a failed step may be scheduled again (a retry)."""
        self.check_transition("schedule_step")
        check_text(step_id, "step_id")
        if agent is not None:
            check_text(agent, "agent")
        existing = self.steps.get(step_id)
        if existing is not None and existing.status is not StepStatus.FAILED:
            raise _invalid(
                f"step {step_id!r} is already {existing.status.value}",
                f"step_{existing.status.value}",
                field="step_id",
            )
        self._schedule_step(step_id=step_id, agent=agent)

    @event("StepScheduled")
    def _schedule_step(self, step_id: str, agent: str | None) -> None:
        step = self.steps.get(step_id)
        if step is None:
            self.steps[step_id] = StepRecord(
                step_id, StepStatus.SCHEDULED, agent, self.attempt_counts.get(step_id, 0)
            )
        else:
            step.status = StepStatus.SCHEDULED
            step.agent = agent or step.agent

    def start_step(self, step_id: str) -> None:
        """Start a scheduled step (not while its approval is pending or was rejected)."""
        self.check_transition("start_step")
        self.check_step(step_id, StepStatus.SCHEDULED)
        approval = self.approvals.get(step_id)
        if approval is not None and approval.status is not ApprovalStatus.GRANTED:
            raise _invalid(
                f"step {step_id!r} is gated by an approval that is {approval.status.value}",
                f"approval_{approval.status.value}",
                field="step_id",
            )
        self._start_step(step_id=step_id, attempt=self.attempt_counts.get(step_id, 0) + 1)

    @event("StepStarted")
    def _start_step(self, step_id: str, attempt: int) -> None:
        step = self.steps[step_id]
        step.status = StepStatus.RUNNING
        step.attempts = self.attempt_counts[step_id] = attempt
        if self.state is ExecutionState.PENDING:
            self.state = ExecutionState.RUNNING

    def complete_step(self, step_id: str, *, output: dict[str, Any] | None = None) -> None:
        """Record that a running step finished with ``output``."""
        self.check_transition("complete_step")
        step = self.check_step(step_id, StepStatus.RUNNING)
        copy = None if output is None else json_object_copy(output, "output")
        self._complete_step(step_id=step_id, attempt=step.attempts, output=copy)

    @event("StepCompleted")
    def _complete_step(self, step_id: str, attempt: int, output: dict[str, Any] | None) -> None:
        step = self.steps[step_id]
        step.status = StepStatus.COMPLETED
        step.output = output
        step.error = None

    def fail_step(
        self, step_id: str, *, error: str, error_type: str | None = None, retryable: bool = True
    ) -> None:
        """Record that a running step's attempt failed; recovery decides what happens next."""
        self.check_transition("fail_step")
        step = self.check_step(step_id, StepStatus.RUNNING)
        check_text(error, "error")
        self._fail_step(
            step_id=step_id,
            attempt=step.attempts,
            error=error,
            error_type=error_type,
            retryable=bool(retryable),
        )

    @event("StepFailed")
    def _fail_step(
        self, step_id: str, attempt: int, error: str, error_type: str | None, retryable: bool
    ) -> None:
        step = self.steps[step_id]
        step.status = StepStatus.FAILED
        step.error = error

    # Checkpoints and rollback ------------------------------------------------------------

    def create_checkpoint(
        self,
        checkpoint_id: str,
        *,
        step_id: str,
        position: str,
        checksum: str,
        size: int,
        storage: str,
        inline_state: bytes | None = None,
        object_key: str | None = None,
    ) -> None:
        """Record a state checkpoint before or after a step (refused once the run is over)."""
        self.check_transition("create_checkpoint")
        check_text(checkpoint_id, "checkpoint_id")
        if checkpoint_id in self.checkpoints:
            raise _invalid(
                f"checkpoint {checkpoint_id!r} already exists",
                "duplicate_checkpoint",
                field="checkpoint_id",
            )
        self.check_step(step_id)
        check_choice(position, CheckpointPosition, "position")
        check_checkpoint_blob(
            checksum=checksum,
            size=size,
            storage=storage,
            inline_state=inline_state,
            object_key=object_key,
        )
        self._create_checkpoint(
            checkpoint_id=checkpoint_id,
            step_id=step_id,
            position=position,
            checksum=checksum,
            size=size,
            storage=storage,
            inline_state=inline_state,
            object_key=object_key,
        )

    @event("CheckpointCreated")
    def _create_checkpoint(
        self,
        checkpoint_id: str,
        step_id: str,
        position: str,
        checksum: str,
        size: int,
        storage: str,
        inline_state: bytes | None,
        object_key: str | None,
    ) -> None:
        self.checkpoints[checkpoint_id] = CheckpointRecord(
            checkpoint_id=checkpoint_id,
            step_id=step_id,
            position=CheckpointPosition(position),
            checksum=checksum,
            size=size,
            storage=CheckpointStorage(storage),
            inline_state=inline_state,
            object_key=object_key,
            # The event's own version: apply() runs before the aggregate's version moves on.
            sequence=self.version + 1,
            steps_at={sid: dataclasses.replace(step) for sid, step in self.steps.items()},
        )

    def roll_back(self, checkpoint_id: str, *, reason: str | None = None) -> None:
        """Restore the steps to how they were at a checkpoint, so the run resumes from there.

        Raises:
            InvalidCommandError: ``unknown_checkpoint`` when the checkpoint does not exist.
        """
        self.check_transition("roll_back_to_checkpoint")
        checkpoint = self.checkpoints.get(checkpoint_id)
        if checkpoint is None:
            raise _invalid(
                f"execution {self.id} has no checkpoint {checkpoint_id!r}",
                "unknown_checkpoint",
                field="checkpoint_id",
            )
        self._roll_back(
            checkpoint_id=checkpoint_id,
            step_id=checkpoint.step_id,
            position=checkpoint.position.value,
            reason=reason,
        )

    @event("ExecutionRolledBack")
    def _roll_back(
        self, checkpoint_id: str, step_id: str, position: str, reason: str | None
    ) -> None:
        restored: dict[str, StepRecord] = {}
        for sid, step in self.checkpoints[checkpoint_id].steps_at.items():
            # A step that was mid-flight at the checkpoint has to run again.
            status = StepStatus.SCHEDULED if step.status is StepStatus.RUNNING else step.status
            restored[sid] = dataclasses.replace(
                step, status=status, attempts=self.attempt_counts.get(sid, 0)
            )
        self.steps = restored
        self.rollbacks += 1

    # Human approvals ---------------------------------------------------------------------

    def request_human_approval(
        self,
        step_id: str,
        *,
        deadline: datetime,
        default_action: str,
        prompt: str | None = None,
        now: datetime,
    ) -> None:
        """Hold a scheduled step until a human approves it, or until ``deadline``."""
        self.check_transition("request_human_approval")
        self.check_step(step_id, StepStatus.SCHEDULED)
        existing = self.approvals.get(step_id)
        if existing is not None and existing.status is ApprovalStatus.PENDING:
            raise _invalid(
                f"step {step_id!r} already waits for approval", "approval_pending", "step_id"
            )
        check_choice(default_action, ApprovalAction, "default_action")
        if not isinstance(deadline, datetime) or deadline.tzinfo is None or deadline <= now:
            raise _invalid(
                "deadline must be a timezone-aware time in the future",
                "invalid_deadline",
                "deadline",
            )
        self._request_human_approval(
            step_id=step_id, deadline=deadline, default_action=default_action, prompt=prompt
        )

    @event("HumanApprovalRequested")
    def _request_human_approval(
        self, step_id: str, deadline: datetime, default_action: str, prompt: str | None
    ) -> None:
        self.approvals[step_id] = ApprovalRecord(
            step_id, ApprovalStatus.PENDING, deadline, ApprovalAction(default_action), prompt
        )
        self.state = ExecutionState.WAITING_FOR_APPROVAL

    def grant_approval(self, step_id: str, *, decided_by: str, comment: str | None = None) -> None:
        """A human approved the gated step; it may start."""
        self.check_transition("grant_approval")
        self.check_pending_approval(step_id)
        check_text(decided_by, "decided_by")
        self._grant_approval(
            step_id=step_id, decided_by=decided_by, comment=comment, by_default=False
        )

    @event("HumanApprovalGranted")
    def _grant_approval(
        self, step_id: str, decided_by: str, comment: str | None, by_default: bool
    ) -> None:
        self._resolve_approval(step_id, ApprovalStatus.GRANTED, decided_by, comment, by_default)

    def reject_approval(self, step_id: str, *, decided_by: str, comment: str | None = None) -> None:
        """A human rejected the gated step; it must not start."""
        self.check_transition("reject_approval")
        self.check_pending_approval(step_id)
        check_text(decided_by, "decided_by")
        self._reject_approval(
            step_id=step_id, decided_by=decided_by, comment=comment, by_default=False
        )

    @event("HumanApprovalRejected")
    def _reject_approval(
        self, step_id: str, decided_by: str, comment: str | None, by_default: bool
    ) -> None:
        self._resolve_approval(step_id, ApprovalStatus.REJECTED, decided_by, comment, by_default)

    def apply_approval_default(self, step_id: str, *, now: datetime) -> None:
        """Resolve an approval whose deadline has passed with its default action."""
        self.check_transition("apply_approval_default")
        approval = self.check_pending_approval(step_id)
        if now < approval.deadline:
            raise _invalid(
                f"the approval of step {step_id!r} is not due yet", "deadline_not_reached", "now"
            )
        resolve = (
            self._grant_approval
            if approval.default_action is ApprovalAction.APPROVE
            else self._reject_approval
        )
        resolve(step_id=step_id, decided_by=SYSTEM_DEADLINE, comment=None, by_default=True)

    def _resolve_approval(
        self,
        step_id: str,
        status: ApprovalStatus,
        decided_by: str,
        comment: str | None,
        by_default: bool,
    ) -> None:
        approval = self.approvals[step_id]
        approval.status = status
        approval.decided_by = decided_by
        approval.comment = comment
        approval.by_default = by_default
        if not any(a.status is ApprovalStatus.PENDING for a in self.approvals.values()):
            started = bool(self.attempt_counts)
            self.state = ExecutionState.RUNNING if started else ExecutionState.PENDING

    # Ending the run ----------------------------------------------------------------------

    def complete(self, *, output: dict[str, Any] | None = None) -> None:
        """Finish the run successfully (not while a step is still running)."""
        self.check_transition("complete_execution")
        running = sorted(s.step_id for s in self.steps.values() if s.status is StepStatus.RUNNING)
        if running:
            raise _invalid(
                f"steps still running: {', '.join(running)}",
                "steps_running",
                details={"steps": running},
            )
        copy = None if output is None else json_object_copy(output, "output")
        self._complete(output=copy)

    @event("ExecutionCompleted")
    def _complete(self, output: dict[str, Any] | None) -> None:
        self.state = ExecutionState.COMPLETED
        self.outcome = {"output": output}

    def fail(self, *, error: str, error_type: str | None = None) -> None:
        """End the run as failed (recovery gave up, or the run cannot go on)."""
        self.check_transition("fail_execution")
        check_text(error, "error")
        self._fail(error=error, error_type=error_type)

    @event("ExecutionFailed")
    def _fail(self, error: str, error_type: str | None) -> None:
        self.state = ExecutionState.FAILED
        self.outcome = {"error": error, "error_type": error_type}

    def halt(self, *, reason: str, policy_id: str | None = None) -> None:
        """Stop the run because a policy (or an operator) said so."""
        self.check_transition("halt_execution")
        check_text(reason, "reason")
        self._halt(reason=reason, policy_id=policy_id)

    @event("ExecutionHalted")
    def _halt(self, reason: str, policy_id: str | None) -> None:
        self.state = ExecutionState.HALTED
        self.outcome = {"reason": reason, "policy_id": policy_id}

    def cancel(self, *, reason: str | None = None, requested_by: str | None = None) -> None:
        """Cancel the run at a user's request."""
        self.check_transition("cancel_execution")
        self._cancel(reason=reason, requested_by=requested_by)

    @event("ExecutionCancelled")
    def _cancel(self, reason: str | None, requested_by: str | None) -> None:
        self.state = ExecutionState.CANCELLED
        self.outcome = {"reason": reason, "requested_by": requested_by}

    # Copies ------------------------------------------------------------------------------

    def __deepcopy__(self, memo: dict[int, Any]) -> Execution:
        """A deep copy that shares the checkpoint records.

        The repository hands out deep copies of cached runs so that a refused command cannot
        change the cached one; checkpoints are frozen once recorded and make up most of a long
        run (a LangGraph thread checkpoints on every super-step), so copying them would make
        every command cost more the longer the run gets.
        """
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        for name, value in self.__dict__.items():
            if name == "checkpoints":
                clone.__dict__[name] = dict(value)
            else:
                clone.__dict__[name] = copy.deepcopy(value, memo)
        return clone

    # Guards ------------------------------------------------------------------------------

    def check_transition(self, command: str) -> None:
        """Refuse ``command`` in the current state (:class:`InvalidTransitionError`)."""
        check_transition(command, self.state, self.id)

    def check_step(self, step_id: str, status: StepStatus | None = None) -> StepRecord:
        """Return the step, refusing an unknown step or one not in ``status``."""
        step = self.steps.get(step_id)
        if step is None:
            raise _invalid(f"execution has no step {step_id!r}", "unknown_step", "step_id")
        if status is not None and step.status is not status:
            raise _invalid(
                f"step {step_id!r} is {step.status.value}, not {status.value}",
                f"step_not_{status.value}",
                "step_id",
            )
        return step

    def check_pending_approval(self, step_id: str) -> ApprovalRecord:
        """Return the step's pending approval, refusing when there is none."""
        approval = self.approvals.get(step_id)
        if approval is None or approval.status is not ApprovalStatus.PENDING:
            raise _invalid(
                f"step {step_id!r} has no pending approval", "no_pending_approval", "step_id"
            )
        return approval


def _invalid(
    message: str, reason: str, field: str | None = None, *, details: dict[str, Any] | None = None
) -> InvalidCommandError:
    return InvalidCommandError(message, reason=reason, field=field, details=details)
