"""Recovery suggestions on a run: a model's diagnosis of a failure and the fix it proposes.

A suggestion is recorded (``RecoverySuggested``) with its diagnosis and a fix Omium can apply:
``retry`` the failed step, ``rollback`` to a named checkpoint, ``fallback`` to another agent, or
``abort`` the run. A human approves it (possibly edited) or rejects it. Approving applies the fix
in the same save as ``RecoverySuggestionApproved``: the step's pending approval (the escalation)
is granted, and the step is rescheduled, the run rolled back or failed. Every part is the run's
own command with its own checks, so a suggestion can do nothing a person could not do by hand:
in particular a run halted by a deny policy (or a spent budget) stays halted — halted is
terminal, and approving a suggestion on it is refused with ``run_halted``.

Fix fields Omium cannot apply yet are refused on approval rather than silently dropped:
changed step inputs (``input``) and a fallback model without an agent.

This module is a base class of :class:`~omium.commands.executions.Execution`; its events are the
run's events (same hash chain, same Kafka key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from eventsourcing.domain import Aggregate

from omium.commands._domain import TenantScoped
from omium.commands.errors import CheckpointPrunedError, InvalidCommandError
from omium.commands.executions._records import check_text, json_object_copy

if TYPE_CHECKING:
    from omium.commands.executions._records import ApprovalRecord, CheckpointRecord, StepRecord
    from omium.commands.executions._states import ExecutionState

FIX_ACTIONS = ("retry", "rollback", "fallback", "abort")
"""What a suggested fix may do."""

_FIX_FIELDS = frozenset({"action", "step_id", "checkpoint_id", "agent", "model", "input", "reason"})


class SuggestionStatus(StrEnum):
    """Where a suggestion is in its review."""

    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass
class SuggestionRecord:
    """A suggestion as the run keeps it.

    Attributes:
        suggestion_id: Its id.
        failure_id: The failure it diagnoses, when known.
        step_id: The failed step, when any.
        status: :class:`SuggestionStatus`.
        diagnosis: Probable cause, evidence, similar failures, confidence (JSON).
        fix: The proposed fix (after approval: the fix applied, maybe edited).
        requested_by: Who asked (``streams.diagnosis`` on escalation, else the caller).
        usage: Provider, model, tokens and cost of the diagnosis.
        decided_by: Who approved or rejected it.
        comment: The reviewer's comment.
        edited: Whether the approved fix differs from the proposed one.
    """

    suggestion_id: str
    failure_id: str | None
    step_id: str | None
    status: SuggestionStatus
    diagnosis: dict[str, Any]
    fix: dict[str, Any]
    requested_by: str
    usage: dict[str, Any] = field(default_factory=dict)
    decided_by: str | None = None
    comment: str | None = None
    edited: bool = False


class RecoverySuggestions(TenantScoped, Aggregate):
    """The suggestion commands and events of a run (a base class of ``Execution``)."""

    if TYPE_CHECKING:  # provided by Execution
        state: ExecutionState
        steps: dict[str, StepRecord]
        checkpoints: dict[str, CheckpointRecord]
        approvals: dict[str, ApprovalRecord]
        outcome: dict[str, Any]

        def check_transition(self, command: str) -> None: ...
        def schedule_step(self, step_id: str, *, agent: str | None = None) -> None: ...
        def _schedule_step(self, step_id: str, agent: str | None) -> None: ...
        def grant_approval(
            self, step_id: str, *, decided_by: str, comment: str | None = None
        ) -> None: ...
        def roll_back(self, checkpoint_id: str, *, reason: str | None = None) -> None: ...
        def fail(self, *, error: str, error_type: str | None = None) -> None: ...
        def pruned_error(self, checkpoint: CheckpointRecord) -> CheckpointPrunedError: ...

    @property
    def suggestions(self) -> dict[str, SuggestionRecord]:
        """The run's suggestions by id, in the order they were made."""
        records: dict[str, SuggestionRecord] = self.__dict__.setdefault("_suggestions", {})
        return records

    # Commands ----------------------------------------------------------------------------

    def suggest_fix(
        self,
        suggestion_id: str,
        *,
        diagnosis: Mapping[str, Any],
        fix: Mapping[str, Any],
        requested_by: str,
        failure_id: str | None = None,
        step_id: str | None = None,
        usage: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a diagnosis and the fix it proposes, for a human to review.

        Raises:
            InvalidCommandError: ``duplicate_suggestion``, ``invalid_fix``, ``unknown_step``,
                ``unknown_checkpoint`` or a bad field.
        """
        check_text(suggestion_id, "suggestion_id")
        check_text(requested_by, "requested_by")
        if suggestion_id in self.suggestions:
            raise _invalid(
                f"suggestion {suggestion_id!r} already exists",
                "duplicate_suggestion",
                "suggestion_id",
            )
        if step_id is not None:
            check_text(step_id, "step_id")
        if failure_id is not None:
            check_text(failure_id, "failure_id")
        self.trigger_event(
            self.RecoverySuggested,
            suggestion_id=suggestion_id,
            failure_id=failure_id,
            step_id=step_id,
            diagnosis=json_object_copy(dict(diagnosis), "diagnosis"),
            fix=self._checked_fix(fix, step_id),
            requested_by=requested_by,
            usage=json_object_copy(dict(usage or {}), "usage"),
        )

    def approve_suggestion(
        self,
        suggestion_id: str,
        *,
        decided_by: str,
        fix: Mapping[str, Any] | None = None,
        comment: str | None = None,
    ) -> None:
        """Approve a proposed suggestion (``fix`` replaces its fix: an edit) and apply the fix.

        Raises:
            InvalidCommandError: ``unknown_suggestion``, ``suggestion_<status>``, ``run_halted``
                (a deny policy or the budget stopped the run), ``input_change_unsupported``,
                ``fallback_needs_agent``, or any refusal of the fix's own commands.
            InvalidTransitionError: The run's state does not allow the fix.
        """
        check_text(decided_by, "decided_by")
        record = self._proposed(suggestion_id)
        final = record.fix if fix is None else self._checked_fix(fix, record.step_id)
        self._check_applicable(final)
        self.trigger_event(
            self.RecoverySuggestionApproved,
            suggestion_id=suggestion_id,
            decided_by=decided_by,
            fix=final,
            edited=final != record.fix,
            comment=comment,
        )
        self._apply_fix(final, decided_by, suggestion_id)

    def reject_suggestion(
        self, suggestion_id: str, *, decided_by: str, comment: str | None = None
    ) -> None:
        """Reject a proposed suggestion; the run stays as it is (an escalation still waits)."""
        check_text(decided_by, "decided_by")
        self._proposed(suggestion_id)
        self.trigger_event(
            self.RecoverySuggestionRejected,
            suggestion_id=suggestion_id,
            decided_by=decided_by,
            comment=comment,
        )

    # Events ------------------------------------------------------------------------------
    # Declared as classes (not ``@event`` methods) and triggered through ``self``: the run's
    # class redefines them, so they are stored as the run's own (``...domain:Execution.X``).

    class RecoverySuggested(TenantScoped.Event):
        """A diagnosis and the fix it proposes were recorded."""

        suggestion_id: str
        failure_id: str | None
        step_id: str | None
        diagnosis: dict[str, Any]
        fix: dict[str, Any]
        requested_by: str
        usage: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            """Add the proposed suggestion."""
            aggregate.suggestions[self.suggestion_id] = SuggestionRecord(
                suggestion_id=self.suggestion_id,
                failure_id=self.failure_id,
                step_id=self.step_id,
                status=SuggestionStatus.PROPOSED,
                diagnosis=self.diagnosis,
                fix=self.fix,
                requested_by=self.requested_by,
                usage=self.usage,
            )

    class RecoverySuggestionApproved(TenantScoped.Event):
        """A human approved the suggestion; its (maybe edited) fix follows in the same save."""

        suggestion_id: str
        decided_by: str
        fix: dict[str, Any]
        edited: bool
        comment: str | None

        def apply(self, aggregate: Any) -> None:
            """Mark the suggestion approved, with the fix applied."""
            record = aggregate.suggestions[self.suggestion_id]
            record.status = SuggestionStatus.APPROVED
            record.fix = self.fix
            record.edited = self.edited
            record.decided_by = self.decided_by
            record.comment = self.comment

    class RecoverySuggestionRejected(TenantScoped.Event):
        """A human rejected the suggestion."""

        suggestion_id: str
        decided_by: str
        comment: str | None

        def apply(self, aggregate: Any) -> None:
            """Mark the suggestion rejected."""
            record = aggregate.suggestions[self.suggestion_id]
            record.status = SuggestionStatus.REJECTED
            record.decided_by = self.decided_by
            record.comment = self.comment

    # Checks and the fix ------------------------------------------------------------------

    def _proposed(self, suggestion_id: str) -> SuggestionRecord:
        record = self.suggestions.get(suggestion_id)
        if record is None:
            raise _invalid(
                f"execution has no suggestion {suggestion_id!r}",
                "unknown_suggestion",
                "suggestion_id",
            )
        if record.status is not SuggestionStatus.PROPOSED:
            raise _invalid(
                f"suggestion {suggestion_id!r} is already {record.status.value}",
                f"suggestion_{record.status.value}",
                "suggestion_id",
            )
        return record

    def _checked_fix(self, fix: Mapping[str, Any], step_id: str | None) -> dict[str, Any]:
        """A normalised copy of a fix: known fields only, the action's arguments present."""
        if not isinstance(fix, Mapping):
            raise _invalid("fix must be an object", "invalid_fix", "fix")
        unknown = sorted(set(fix) - _FIX_FIELDS)
        if unknown:
            raise _invalid(f"fix has unknown fields {unknown}", "invalid_fix", "fix")
        action = fix.get("action")
        if action not in FIX_ACTIONS:
            raise _invalid(f"fix.action must be one of {list(FIX_ACTIONS)}", "invalid_fix", "fix")
        checked: dict[str, Any] = {"action": action}
        for name in ("step_id", "checkpoint_id", "agent", "model", "reason"):
            value = fix.get(name)
            if value is not None:
                check_text(value, f"fix.{name}")
                checked[name] = value
        checked.setdefault("step_id", step_id)
        if fix.get("input") is not None:
            checked["input"] = json_object_copy(fix["input"], "fix.input")
        target = checked.get("step_id")
        if action in ("retry", "fallback"):
            if target is None:
                raise _invalid(f"a {action} fix needs a step_id", "invalid_fix", "fix.step_id")
            if target not in self.steps:
                raise _invalid(f"execution has no step {target!r}", "unknown_step", "fix.step_id")
        if action == "fallback" and not (checked.get("agent") or checked.get("model")):
            raise _invalid("a fallback fix needs an agent", "invalid_fix", "fix.agent")
        if action == "rollback":
            checkpoint = checked.get("checkpoint_id")
            if checkpoint is None or checkpoint not in self.checkpoints:
                raise _invalid(
                    f"execution has no checkpoint {checkpoint!r}",
                    "unknown_checkpoint",
                    "fix.checkpoint_id",
                )
            record = self.checkpoints[checkpoint]
            if record.pruned:
                raise self.pruned_error(record)
        return checked

    def _check_applicable(self, fix: Mapping[str, Any]) -> None:
        from omium.commands.executions._states import ExecutionState

        if self.state is ExecutionState.HALTED:
            policy = self.outcome.get("policy_id")
            why = f"policy {policy!r}" if policy else "a halt"
            raise _invalid(
                f"the run was stopped by {why}; a suggestion cannot resume it",
                "run_halted",
                details={"policy_id": policy} if policy else None,
            )
        if fix.get("input"):
            raise _invalid(
                "changed step inputs cannot be applied yet; edit the fix without 'input'",
                "input_change_unsupported",
                "fix.input",
            )
        if fix["action"] == "fallback" and not fix.get("agent"):
            raise _invalid(
                "a fallback to another model alone cannot be applied yet; name an agent",
                "fallback_needs_agent",
                "fix.agent",
            )

    def _apply_fix(self, fix: Mapping[str, Any], decided_by: str, suggestion_id: str) -> None:
        from omium.commands.executions._records import ApprovalStatus, StepStatus

        action, step_id = fix["action"], fix.get("step_id")
        note = f"recovery suggestion {suggestion_id}"
        approval = self.approvals.get(step_id) if step_id is not None else None
        waiting = approval is not None and approval.status is ApprovalStatus.PENDING
        if action == "abort":
            self.fail(error=f"aborted on review: {fix.get('reason') or note}", error_type="abort")
            return
        if action == "rollback":
            if waiting and step_id is not None:
                self.grant_approval(step_id, decided_by=decided_by, comment=note)
            self.roll_back(str(fix["checkpoint_id"]), reason=note)
            return
        assert step_id is not None  # checked by _checked_fix
        step = self.steps[step_id]
        agent = fix.get("agent") if action == "fallback" else None
        if step.status is StepStatus.FAILED:
            self.schedule_step(step_id, agent=agent)
        elif step.status is StepStatus.SCHEDULED:
            if agent is not None and agent != step.agent:
                # Scheduled again, with the other agent, before it is let go.
                self.check_transition("schedule_step")
                self._schedule_step(step_id=step_id, agent=agent)
        else:
            raise _invalid(
                f"step {step_id!r} is {step.status.value}: nothing to {action}",
                f"step_{step.status.value}",
                "fix.step_id",
            )
        if waiting:
            self.grant_approval(step_id, decided_by=decided_by, comment=note)


def _invalid(
    message: str, reason: str, field: str | None = None, *, details: dict[str, Any] | None = None
) -> InvalidCommandError:
    return InvalidCommandError(message, reason=reason, field=field, details=details)
