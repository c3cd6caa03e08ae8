"""The Execution aggregate: one run of a workflow, as an explicit state machine.

Each public command method checks the state machine (``_states.py``) and its arguments, then
calls the private ``@event`` method whose body only applies the change. Event bodies never
validate: they also run when the run is rebuilt from stored events, and a rule tightened later
must not make old history unreadable.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from omium.commands._domain import TenantScoped
from omium.commands.errors import CheckpointPrunedError, InvalidCommandError
from omium.commands.executions._fork import fork_blob, fork_steps, restored_steps
from omium.commands.executions._records import (
    ApprovalAction,
    ApprovalRecord,
    ApprovalStatus,
    CheckpointPosition,
    CheckpointRecord,
    CheckpointStorage,
    EscalationRecord,
    StepRecord,
    StepStatus,
    check_approvers,
    check_checkpoint_blob,
    check_choice,
    check_decider,
    check_escalation,
    check_step_usage,
    check_text,
    check_usage_number,
    json_object_copy,
)
from omium.commands.executions._retention import CheckpointRetention, prunable
from omium.commands.executions._states import ExecutionState, check_transition
from omium.commands.executions._suggestions import RecoverySuggestions

SYSTEM_DEADLINE = "system:deadline"
"""``decided_by`` of an approval resolved by its default action at the deadline."""


class Execution(RecoverySuggestions, TenantScoped, Aggregate):
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
        parent_execution_id: The run this one was forked from (``None``: not a fork).
        forked_from_checkpoint_id: The parent's checkpoint the fork started from.
    """

    @classmethod
    def start(
        cls,
        *,
        tenant_id: str,
        workflow_id: UUID,
        workflow_version: int,
        input: dict[str, Any] | None = None,
        max_cost_usd: float | None = None,
        max_tokens: int | None = None,
    ) -> Execution:
        """Start a run; it is ``pending`` until its first step starts.

        ``max_cost_usd`` and ``max_tokens`` record the run's budget (its workflow version's
        ``policies.budget``) for the read models; the worker enforces the definition's.

        Raises:
            InvalidCommandError: A bad workflow version, input or budget.
        """
        if isinstance(workflow_version, bool) or not isinstance(workflow_version, int):
            raise _invalid("workflow_version must be an integer", "invalid_workflow_version")
        if workflow_version < 1:
            raise _invalid("workflow_version must be at least 1", "invalid_workflow_version")
        if max_cost_usd is not None:
            max_cost_usd = check_usage_number(max_cost_usd, "max_cost_usd", integer=False)
        if max_tokens is not None:
            max_tokens = int(check_usage_number(max_tokens, "max_tokens", integer=True))
        return cls(
            tenant_id=tenant_id,
            workflow_id=workflow_id,
            workflow_version=workflow_version,
            input=json_object_copy({} if input is None else input, "input"),
            max_cost_usd=max_cost_usd,
            max_tokens=max_tokens,
        )

    @event("ExecutionStarted")
    def __init__(
        self,
        *,
        tenant_id: str,
        workflow_id: UUID,
        workflow_version: int,
        input: dict[str, Any],
        max_cost_usd: float | None = None,
        max_tokens: int | None = None,
    ) -> None:
        """Apply ``ExecutionStarted``: a pending run with no steps yet (runs started before
        budgets were recorded read as having none)."""
        self.tenant_id = tenant_id
        self.workflow_id = workflow_id
        self.workflow_version = workflow_version
        self.input = input
        self.max_cost_usd = max_cost_usd
        self.max_tokens = max_tokens
        self.state = ExecutionState.PENDING
        self.steps: dict[str, StepRecord] = {}
        self.checkpoints: dict[str, CheckpointRecord] = {}
        self.approvals: dict[str, ApprovalRecord] = {}
        self.attempt_counts: dict[str, int] = {}
        self.rollbacks = 0
        self.outcome: dict[str, Any] = {}
        self.parent_execution_id: UUID | None = None
        self.forked_from_checkpoint_id: str | None = None

    # Forks -------------------------------------------------------------------------------

    @classmethod
    def fork(
        cls,
        parent: Execution,
        checkpoint_id: str,
        *,
        new_checkpoint_id: str,
        workflow_version: int | None = None,
        state: bytes | None = None,
        known_steps: Collection[str] | None = None,
    ) -> Execution:
        """A new run that starts where ``parent`` was at one of its checkpoints.

        The parent is only read (it may still be running). The fork runs ``workflow_version``
        (default: the parent's) with the parent's input; its steps are the parent's at the
        checkpoint (completed ones stay completed, the others run again) and its first
        checkpoint, ``new_checkpoint_id``, holds the checkpoint's state (or the edited
        ``state``) for the steps that run again to start from. ``known_steps``, when given, are
        the steps of ``workflow_version``: each step the fork runs again must be one of them.

        Raises:
            InvalidCommandError: ``unknown_checkpoint``, ``invalid_workflow_version``,
                ``steps_not_in_version``, ``invalid_state`` or ``state_too_large``.
        """
        checkpoint = parent.checkpoints.get(checkpoint_id)
        if checkpoint is None:
            raise _invalid(
                f"execution {parent.id} has no checkpoint {checkpoint_id!r}",
                "unknown_checkpoint",
                field="checkpoint_id",
            )
        if checkpoint.pruned and state is None:
            raise parent.pruned_error(checkpoint)
        version = parent.workflow_version if workflow_version is None else workflow_version
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise _invalid("workflow_version must be at least 1", "invalid_workflow_version")
        check_text(new_checkpoint_id, "checkpoint_id")
        steps = fork_steps(checkpoint)
        if known_steps is not None:
            known = set(known_steps)
            missing = [s["step_id"] for s in steps if s["status"] != "completed"]
            missing = [step for step in missing if step not in known]
            if missing:
                raise _invalid(
                    f"workflow version {version} has no step {', '.join(missing)}, "
                    "which the fork must run again",
                    "steps_not_in_version",
                    field="workflow_version",
                    details={"steps": missing},
                )
        blob = fork_blob(checkpoint, state)
        forked: Execution = cls._create(
            cls.ExecutionForked,
            id=uuid4(),
            tenant_id=parent.tenant_id,
            workflow_id=parent.workflow_id,
            workflow_version=version,
            input=json_object_copy(parent.input, "input"),
            parent_execution_id=parent.id,
            parent_workflow_version=parent.workflow_version,
            forked_from_checkpoint_id=checkpoint_id,
            checkpoint_step_id=checkpoint.step_id,
            checkpoint_position=checkpoint.position.value,
            steps=steps,
            state_edited=state is not None,
            start_checkpoint_id=new_checkpoint_id,
        )
        forked.create_checkpoint(
            new_checkpoint_id,
            step_id=checkpoint.step_id,
            position=checkpoint.position.value,
            **blob,
        )
        return forked

    class ExecutionForked(Aggregate.Created):
        """A run forked from a checkpoint of another run (its creation event).

        Attributes:
            parent_execution_id: The run it was forked from.
            parent_workflow_version: The definition version the parent runs.
            forked_from_checkpoint_id: The parent's checkpoint.
            checkpoint_step_id: That checkpoint's step.
            checkpoint_position: ``before`` or ``after`` that step.
            steps: The fork's steps (see ``_fork.fork_steps``).
            state_edited: Whether the fork starts from an edited state.
            start_checkpoint_id: The fork's own first checkpoint (recorded next), which holds
                the state its steps start from.
        """

        tenant_id: str
        workflow_id: UUID
        workflow_version: int
        input: dict[str, Any]
        parent_execution_id: UUID
        parent_workflow_version: int
        forked_from_checkpoint_id: str
        checkpoint_step_id: str
        checkpoint_position: str
        steps: list[dict[str, Any]]
        state_edited: bool
        start_checkpoint_id: str

        def apply(self, aggregate: Any) -> None:
            """After ``__init__`` (a pending run): the lineage and the restored steps."""
            aggregate.parent_execution_id = self.parent_execution_id
            aggregate.forked_from_checkpoint_id = self.forked_from_checkpoint_id
            aggregate.steps = restored_steps(self.steps)
            aggregate.attempt_counts = {
                sid: step.attempts for sid, step in aggregate.steps.items() if step.attempts
            }
            if aggregate.steps:
                # It goes on from the middle of a run: complete it once the rest is done.
                aggregate.state = ExecutionState.RUNNING

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

    def schedule_new_step(self, step_id: str, *, agent: str | None = None) -> None:
        """Schedule a step the run does not have yet (one that just became ready).

        Unlike :meth:`schedule_step` this never retries a failed step: a step that is there in
        any status was scheduled by someone else (a worker that went on to it itself, see
        :meth:`advance_step`), and the refusal says in which status (``step_<status>``).
        """
        self.check_transition("schedule_step")
        check_text(step_id, "step_id")
        if agent is not None:
            check_text(agent, "agent")
        existing = self.steps.get(step_id)
        if existing is not None:
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

    def complete_step(
        self,
        step_id: str,
        *,
        output: dict[str, Any] | None = None,
        usage: Mapping[str, Any] | None = None,
    ) -> None:
        """Record that a running step finished with ``output``.

        ``usage`` is what the attempt's LLM calls used, added up: ``tokens_in``, ``tokens_out``,
        ``cost_usd`` and ``model`` (the model that answered most calls), each optional.
        """
        self.check_transition("complete_step")
        step = self.check_step(step_id, StepStatus.RUNNING)
        copy = None if output is None else json_object_copy(output, "output")
        used = check_step_usage(usage)
        self._complete_step(step_id=step_id, attempt=step.attempts, output=copy, **used)

    @event("StepCompleted")
    def _complete_step(
        self,
        step_id: str,
        attempt: int,
        output: dict[str, Any] | None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost_usd: float = 0.0,
        model: str | None = None,
    ) -> None:
        step = self.steps[step_id]
        step.status = StepStatus.COMPLETED
        step.output = output
        step.error = None

    def advance_step(
        self,
        step_id: str,
        *,
        output: dict[str, Any] | None = None,
        checkpoint: Mapping[str, Any] | None = None,
        next_step_id: str | None = None,
        next_agent: str | None = None,
        next_checkpoint: Mapping[str, Any] | None = None,
        halt_reason: str | None = None,
        halt_policy_id: str | None = None,
        usage: Mapping[str, Any] | None = None,
    ) -> None:
        """Complete a running step and go on at once: what a worker holding the run records.

        In one decision (so in one save): ``complete_step``, its *after* checkpoint (when
        given), then either ``schedule_new_step`` + ``start_step`` of ``next_step_id`` and its
        *before* checkpoint (when given), or ``halt`` (a deny-mode policy refused the output).
        Each part is checked as its own command is; a refusal of any part refuses the whole.

        Args:
            step_id: The running step that finished.
            output: Its output.
            checkpoint: ``create_checkpoint`` arguments of its *after* checkpoint (without
                ``step_id`` and ``position``).
            next_step_id: The step to schedule and start.
            next_agent: The agent of the next step.
            next_checkpoint: The next step's *before* checkpoint, like ``checkpoint``.
            halt_reason: Halt the run instead of going on.
            halt_policy_id: The policy that halted it.
            usage: What the step's LLM calls used (see :meth:`complete_step`).
        """
        if next_step_id is not None and halt_reason is not None:
            raise _invalid("a step cannot both go on and halt the run", "next_and_halt")
        if next_step_id is None and next_checkpoint is not None:
            raise _invalid("a before checkpoint needs a next step", "checkpoint_without_step")
        self.complete_step(step_id, output=output, usage=usage)
        if checkpoint is not None:
            self.create_checkpoint(step_id=step_id, position="after", **checkpoint)
        if halt_reason is not None:
            self.halt(reason=halt_reason, policy_id=halt_policy_id)
        elif next_step_id is not None:
            self.schedule_new_step(next_step_id, agent=next_agent)
            self.start_step(next_step_id)
            if next_checkpoint is not None:
                self.create_checkpoint(step_id=next_step_id, position="before", **next_checkpoint)

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

    def _create_checkpoint(self, **fields: Any) -> None:
        self.trigger_event(self.CheckpointCreated, **fields)

    class CheckpointCreated(Aggregate.Event):
        """A checkpoint was recorded (an explicit class so that it can read its own timestamp).

        Attributes:
            checkpoint_id: Its id, unique within the run.
            step_id: The step it belongs to.
            position: ``before`` or ``after`` the step.
            checksum: Lowercase hex SHA-256 of the state.
            size: Size of the state in bytes.
            storage: ``inline`` or ``object``.
            inline_state: The state, when inline.
            object_key: The object's key, when in object storage.
        """

        checkpoint_id: str
        step_id: str
        position: str
        checksum: str
        size: int
        storage: str
        inline_state: bytes | None
        object_key: str | None

        def apply(self, aggregate: Any) -> None:
            """Add the checkpoint, with the steps as they are now (what a rollback restores)."""
            aggregate.checkpoints[self.checkpoint_id] = CheckpointRecord(
                checkpoint_id=self.checkpoint_id,
                step_id=self.step_id,
                position=CheckpointPosition(self.position),
                checksum=self.checksum,
                size=self.size,
                storage=CheckpointStorage(self.storage),
                inline_state=self.inline_state,
                object_key=self.object_key,
                # The event's own version: apply() runs before the aggregate's version moves on.
                sequence=self.originator_version,
                steps_at={sid: dataclasses.replace(step) for sid, step in aggregate.steps.items()},
                created_at=self.timestamp,
            )

    def prune_checkpoints(
        self,
        *,
        keep_last: int | None = None,
        max_age: timedelta | None = None,
        now: datetime,
    ) -> list[str]:
        """Let go of the checkpoints a retention rule no longer keeps (in any state of the run).

        Rules apply per step and position (``before``/``after``); the latest checkpoint of
        each step at each position always stays. A pruned checkpoint keeps its record
        (id, step, checksum) but not its state: rolling back to it, forking from it or reading
        its state raises :class:`~omium.commands.errors.CheckpointPrunedError`.

        Returns:
            The ids pruned now (empty: nothing to prune, no event).

        Raises:
            InvalidCommandError: ``invalid_retention`` (no rule, ``keep_last`` < 1, ...).
        """
        retention = CheckpointRetention(keep_last=keep_last, max_age=max_age)
        doomed = prunable(self.checkpoints.values(), retention, now=now)
        if not doomed:
            return []
        self._prune_checkpoints(
            checkpoints=[
                {
                    "checkpoint_id": c.checkpoint_id,
                    "step_id": c.step_id,
                    "checksum": c.checksum,
                    "size": c.size,
                    "storage": c.storage.value,
                    "object_key": c.object_key,
                }
                for c in doomed
            ],
            keep_last=retention.keep_last,
            max_age_s=retention.to_dict()["max_age_s"],
            pruned_at=now,
        )
        return [c.checkpoint_id for c in doomed]

    @event("CheckpointsPruned")
    def _prune_checkpoints(
        self,
        checkpoints: list[dict[str, Any]],
        keep_last: int | None,
        max_age_s: float | None,
        pruned_at: datetime,
    ) -> None:
        for pruned in checkpoints:
            record = self.checkpoints.get(pruned["checkpoint_id"])
            if record is not None:
                self.checkpoints[record.checkpoint_id] = dataclasses.replace(
                    record, pruned=True, inline_state=None
                )

    def pruned_error(self, checkpoint: CheckpointRecord) -> CheckpointPrunedError:
        """The error for a use of a pruned checkpoint."""
        return CheckpointPrunedError(
            checkpoint_id=checkpoint.checkpoint_id,
            execution_id=self.id,
            checksum=checkpoint.checksum,
        )

    def roll_back(self, checkpoint_id: str, *, reason: str | None = None) -> None:
        """Restore the steps to how they were at a checkpoint, so the run resumes from there.

        Raises:
            InvalidCommandError: ``unknown_checkpoint`` when the checkpoint does not exist.
            CheckpointPrunedError: Retention pruned it.
        """
        self.check_transition("roll_back_to_checkpoint")
        checkpoint = self.checkpoints.get(checkpoint_id)
        if checkpoint is None:
            raise _invalid(
                f"execution {self.id} has no checkpoint {checkpoint_id!r}",
                "unknown_checkpoint",
                field="checkpoint_id",
            )
        if checkpoint.pruned:
            raise self.pruned_error(checkpoint)
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
        approvers: Sequence[str] | None = None,
        approver_role: str | None = None,
        escalation: Mapping[str, Any] | None = None,
    ) -> None:
        """Hold a scheduled step until a human approves it, or until ``deadline``.

        ``approvers`` names the principals who may decide, ``approver_role`` the least role a
        decider must hold (both optional; a decision by anyone else is refused). With
        ``default_action`` ``escalate``, ``escalation`` (``approvers``/``approver_role``,
        ``timeout_s``, ``default_action`` approve|reject) says who decides after the deadline.
        """
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
        named = check_approvers(approvers, approver_role)
        escalate = check_escalation(default_action, escalation)
        self._request_human_approval(
            step_id=step_id,
            deadline=deadline,
            default_action=default_action,
            prompt=prompt,
            approvers=named or None,
            approver_role=approver_role,
            escalation=None if escalate is None else escalate.to_dict(),
        )

    @event("HumanApprovalRequested")
    def _request_human_approval(
        self,
        step_id: str,
        deadline: datetime,
        default_action: str,
        prompt: str | None,
        approvers: list[str] | None = None,
        approver_role: str | None = None,
        escalation: dict[str, Any] | None = None,
    ) -> None:
        # approvers, approver_role and escalation are absent from requests stored before.
        self.approvals[step_id] = ApprovalRecord(
            step_id,
            ApprovalStatus.PENDING,
            deadline,
            ApprovalAction(default_action),
            prompt,
            approvers=list(approvers or []),
            approver_role=approver_role,
            escalation=None if escalation is None else EscalationRecord.from_dict(escalation),
        )
        self.state = ExecutionState.WAITING_FOR_APPROVAL

    def grant_approval(
        self,
        step_id: str,
        *,
        decided_by: str,
        comment: str | None = None,
        now: datetime | None = None,
        decider_roles: Sequence[str] | None = None,
    ) -> None:
        """A human approved the gated step; it may start.

        With ``now``, a decision at or after the approval's deadline is refused
        (``approval_deadline_passed``): from then on its default action applies. A decider the
        approval does not name, or (given ``decider_roles``) below its ``approver_role``, is
        refused (``not_an_approver``).
        """
        self.check_transition("grant_approval")
        approval = self.check_pending_approval(step_id)
        self.check_decision_in_time(approval, now)
        check_text(decided_by, "decided_by")
        check_decider(approval, decided_by, decider_roles)
        self._grant_approval(
            step_id=step_id, decided_by=decided_by, comment=comment, by_default=False
        )

    @event("HumanApprovalGranted")
    def _grant_approval(
        self, step_id: str, decided_by: str, comment: str | None, by_default: bool
    ) -> None:
        self._resolve_approval(step_id, ApprovalStatus.GRANTED, decided_by, comment, by_default)

    def reject_approval(
        self,
        step_id: str,
        *,
        decided_by: str,
        comment: str | None = None,
        now: datetime | None = None,
        decider_roles: Sequence[str] | None = None,
    ) -> None:
        """A human rejected the gated step; it must not start (checks: as ``grant_approval``)."""
        self.check_transition("reject_approval")
        approval = self.check_pending_approval(step_id)
        self.check_decision_in_time(approval, now)
        check_text(decided_by, "decided_by")
        check_decider(approval, decided_by, decider_roles)
        self._reject_approval(
            step_id=step_id, decided_by=decided_by, comment=comment, by_default=False
        )

    @event("HumanApprovalRejected")
    def _reject_approval(
        self, step_id: str, decided_by: str, comment: str | None, by_default: bool
    ) -> None:
        self._resolve_approval(step_id, ApprovalStatus.REJECTED, decided_by, comment, by_default)

    def apply_approval_default(self, step_id: str, *, now: datetime) -> None:
        """Resolve an approval whose deadline has passed with its default action.

        ``escalate`` does not resolve it: the approval passes to its escalation's deciders,
        with a new deadline ``now`` + the escalation's ``timeout_s`` and the escalation's
        default (``HumanApprovalEscalated``).
        """
        self.check_transition("apply_approval_default")
        approval = self.check_pending_approval(step_id)
        if now < approval.deadline:
            raise _invalid(
                f"the approval of step {step_id!r} is not due yet", "deadline_not_reached", "now"
            )
        escalation = approval.escalation
        if approval.default_action is ApprovalAction.ESCALATE and escalation is not None:
            self._escalate_approval(
                step_id=step_id,
                approvers=list(escalation.approvers),
                approver_role=escalation.approver_role,
                deadline=now + timedelta(seconds=escalation.timeout_s),
                default_action=escalation.default_action.value,
                previous_deadline=approval.deadline,
                escalated_at=now,
            )
            return
        resolve = (
            self._grant_approval
            if approval.default_action is ApprovalAction.APPROVE
            else self._reject_approval
        )
        resolve(step_id=step_id, decided_by=SYSTEM_DEADLINE, comment=None, by_default=True)

    @event("HumanApprovalEscalated")
    def _escalate_approval(
        self,
        step_id: str,
        approvers: list[str],
        approver_role: str | None,
        deadline: datetime,
        default_action: str,
        previous_deadline: datetime,
        escalated_at: datetime,
    ) -> None:
        approval = self.approvals[step_id]
        approval.approvers = list(approvers)
        approval.approver_role = approver_role
        approval.deadline = deadline
        approval.default_action = ApprovalAction(default_action)
        approval.escalated_at = escalated_at

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

    @staticmethod
    def check_decision_in_time(approval: ApprovalRecord, now: datetime | None) -> None:
        """Refuse a human decision at or after the deadline (``approval_deadline_passed``)."""
        if now is not None and now >= approval.deadline:
            raise _deadline_passed(approval)

    def check_pending_approval(self, step_id: str) -> ApprovalRecord:
        """Return the step's pending approval, refusing when there is none."""
        approval = self.approvals.get(step_id)
        if approval is None or approval.status is not ApprovalStatus.PENDING:
            raise _invalid(
                f"step {step_id!r} has no pending approval", "no_pending_approval", "step_id"
            )
        return approval


def _deadline_passed(approval: ApprovalRecord) -> InvalidCommandError:
    deadline = approval.deadline.isoformat()
    action = approval.default_action.value
    return _invalid(
        f"the approval of step {approval.step_id!r} closed at its deadline {deadline}; "
        f"its default action ({action}) applies",
        "approval_deadline_passed",
        "step_id",
        details={"deadline": deadline, "default_action": action},
    )


def _invalid(
    message: str, reason: str, field: str | None = None, *, details: dict[str, Any] | None = None
) -> InvalidCommandError:
    return InvalidCommandError(message, reason=reason, field=field, details=details)
