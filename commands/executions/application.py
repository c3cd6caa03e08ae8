"""Command handlers and queries for executions (runs)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Recording
from eventsourcing.utils import get_topic

from omium.commands._application import (
    check_tenant_id,
    command_handler,
    translate_persistence_errors,
)
from omium.commands._result import Outcome
from omium.commands._topics import legacy_topic
from omium.commands.errors import InvalidCommandError
from omium.commands.executions._suggestion_commands import SuggestionCommands
from omium.commands.executions._views import CheckpointView, ExecutionView
from omium.commands.executions.domain import Execution

_SCAN_SECTION = 1000
"""Notifications read per query while scanning for checkpoint events."""


def _topics_of(*event_classes: type) -> list[str]:
    """The stored topics of event classes, their pre-namespace ones too."""
    topics = []
    for cls in event_classes:
        topic = get_topic(cls)
        topics.append(topic)
        old = legacy_topic(topic)
        if old is not None:
            topics.append(old)
    return topics


_CHECKPOINTS_PRUNED: type[Any] = vars(Execution)["CheckpointsPruned"]
"""The event class ``@event("CheckpointsPruned")`` made (invisible to type checkers)."""


class ExecutionsApplication(SuggestionCommands):
    """Runs of workflows: steps, checkpoints, rollbacks, human approvals, and how runs end.

    Every handler takes the caller's ``tenant_id`` first and, for an existing run, its
    ``execution_id``; another tenant's run is reported as not found. Every handler also takes:

    - ``expected_version``: the run's version the caller last saw; a different current version
      raises :class:`~omium.commands.errors.ConflictError` instead of applying the command.
    - ``idempotency_key``: the same key again returns the first result and writes nothing.

    Handlers return a :class:`~omium.commands.CommandResult`. Refusals raise
    :class:`~omium.commands.errors.InvalidTransitionError` (wrong state, naming command and state),
    :class:`~omium.commands.errors.InvalidCommandError` (bad arguments, with a ``reason``),
    :class:`~omium.commands.errors.NotFoundError` or :class:`~omium.commands.errors.ConflictError`.
    """

    name = "Executions"

    @command_handler
    def start_execution(
        self,
        tenant_id: str,
        *,
        workflow_id: UUID,
        workflow_version: int,
        input: dict[str, Any] | None = None,
        max_cost_usd: float | None = None,
        max_tokens: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Start a run of a workflow version; it gets a new random id and is ``pending``.

        ``max_cost_usd`` and ``max_tokens`` record its budget (the version's
        ``policies.budget``) on ``ExecutionStarted``.
        """
        return Execution.start(
            tenant_id=tenant_id,
            workflow_id=workflow_id,
            workflow_version=workflow_version,
            input=input,
            max_cost_usd=max_cost_usd,
            max_tokens=max_tokens,
        )

    @command_handler
    def schedule_step(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        step_id: str,
        agent: str | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Schedule a step (or a retry of a failed step)."""
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.schedule_step(step_id, agent=agent)
        return execution

    @command_handler
    def start_step(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        step_id: str,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Start a scheduled step; the first one moves the run from pending to running."""
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.start_step(step_id)
        return execution

    @command_handler
    def complete_step(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        step_id: str,
        output: dict[str, Any] | None = None,
        usage: dict[str, Any] | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Record a running step's output and what its LLM calls used (``tokens_in``,
        ``tokens_out``, ``cost_usd``, ``model``)."""
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.complete_step(step_id, output=output, usage=usage)
        return execution

    @command_handler
    def schedule_new_step(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        step_id: str,
        agent: str | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Schedule a step the run does not have yet (refused with ``step_<status>`` if it has).

        The orchestrator schedules steps that became ready with this: a refusal tells it that
        the worker which completed the step before went on to this one itself.
        """
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.schedule_new_step(step_id, agent=agent)
        return execution

    @command_handler
    def advance_step(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        step_id: str,
        output: dict[str, Any] | None = None,
        checkpoint: dict[str, Any] | None = None,
        next_step_id: str | None = None,
        next_agent: str | None = None,
        next_checkpoint: dict[str, Any] | None = None,
        halt_reason: str | None = None,
        halt_policy_id: str | None = None,
        usage: dict[str, Any] | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome[Execution]:
        """Complete a running step and, in the same save, go on to the next one (or halt).

        ``StepCompleted``, the *after* checkpoint, ``StepScheduled`` and ``StepStarted`` of the
        next step and its *before* checkpoint are one event-store transaction, checked against
        ``expected_version``: anything another process did to the run since (a rollback, a
        halt, a cancel) makes it a :class:`~omium.commands.errors.ConflictError` and nothing is
        written. See :meth:`Execution.advance_step` for the arguments.

        Returns:
            A result whose ``data`` has ``next_step`` and its ``attempt`` (``None`` when the
            run was halted or there was no next step) and ``halted``.
        """
        execution = self._as_saved(tenant_id, execution_id, expected_version)
        execution.advance_step(
            step_id,
            output=output,
            checkpoint=checkpoint,
            next_step_id=next_step_id,
            next_agent=next_agent,
            next_checkpoint=next_checkpoint,
            halt_reason=halt_reason,
            halt_policy_id=halt_policy_id,
            usage=usage,
        )
        attempt = None if next_step_id is None else execution.steps[next_step_id].attempts
        data = {
            "next_step": None if halt_reason is not None else next_step_id,
            "attempt": None if halt_reason is not None else attempt,
            "halted": halt_reason is not None,
        }
        return Outcome(execution, data)

    @command_handler
    def fail_step(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        step_id: str,
        error: str,
        error_type: str | None = None,
        retryable: bool = True,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Record a failed attempt of a running step (the attempt number is in the event)."""
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.fail_step(step_id, error=error, error_type=error_type, retryable=retryable)
        return execution

    @command_handler
    def create_checkpoint(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        step_id: str,
        position: str,
        checksum: str,
        size: int,
        storage: str,
        inline_state: bytes | None = None,
        object_key: str | None = None,
        checkpoint_id: str | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome[Execution]:
        """Record a checkpoint of the run's state before or after a step.

        Args:
            tenant_id: The caller's tenant.
            execution_id: The run.
            step_id: The step the checkpoint belongs to (must be known to the run).
            position: ``"before"`` or ``"after"`` the step.
            checksum: Lowercase hex SHA-256 of the state blob.
            size: Size of the blob in bytes.
            storage: ``"inline"`` (blob in ``inline_state``) or ``"object"`` (in ``object_key``).
            inline_state: The blob, for inline storage (checked against checksum and size).
            object_key: Where the blob is in object storage.
            checkpoint_id: The id to use; a random one is made when omitted.
            expected_version: See the class docstring.
            idempotency_key: See the class docstring.

        Returns:
            A result whose ``data["checkpoint_id"]`` names the checkpoint.
        """
        execution = self._get(tenant_id, execution_id, expected_version)
        cid = checkpoint_id if checkpoint_id is not None else uuid.uuid4().hex
        execution.create_checkpoint(
            cid,
            step_id=step_id,
            position=position,
            checksum=checksum,
            size=size,
            storage=storage,
            inline_state=inline_state,
            object_key=object_key,
        )
        return Outcome(execution, {"checkpoint_id": cid})

    @command_handler
    def roll_back_to_checkpoint(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        checkpoint_id: str,
        reason: str | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Roll the run back to an existing checkpoint so it resumes from there."""
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.roll_back(checkpoint_id, reason=reason)
        return execution

    @command_handler
    def prune_checkpoints(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        keep_last: int | None = None,
        max_age: timedelta | None = None,
        now: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome[Execution]:
        """Apply a retention rule to a run's checkpoints (``CheckpointsPruned`` if any go).

        Per step and position, the latest ``keep_last`` checkpoints and/or those younger than
        ``max_age`` stay; the latest of each step at each position always stays. Pruning drops
        a checkpoint's state, never its record; object blobs no checkpoint refers to any more
        are deleted by the blob collector (:meth:`referenced_object_keys`, ``CheckpointBlobStore``).

        Returns:
            A result whose ``data["pruned"]`` lists the checkpoint ids pruned now (empty: none,
            nothing recorded).
        """
        execution = self._get(tenant_id, execution_id)
        when = self.now() if now is None else now
        pruned = execution.prune_checkpoints(keep_last=keep_last, max_age=max_age, now=when)
        return Outcome(execution, {"pruned": pruned})

    def referenced_object_keys(self) -> set[str]:
        """The object keys of every checkpoint not pruned, in every run of every tenant.

        Read from the event store's notification log (checkpoint events only), so a checkpoint
        saved before the call is counted however far the read models lag. The blob collector
        deletes only objects outside this set (and older than its grace period, which covers
        a blob uploaded whose checkpoint is not saved yet).
        """
        live: dict[tuple[UUID, str], str] = {}
        pruned: set[tuple[UUID, str]] = set()
        for event in self._checkpoint_events():
            if isinstance(event, _CHECKPOINTS_PRUNED):
                for gone in event.checkpoints:
                    pruned.add((event.originator_id, gone["checkpoint_id"]))
            elif event.object_key:
                live[(event.originator_id, event.checkpoint_id)] = event.object_key
        return {key for ref, key in live.items() if ref not in pruned}

    def runs_with_checkpoints(self, tenant_id: str | None = None) -> dict[UUID, str]:
        """The runs that recorded a checkpoint (of one tenant, or all), with their tenants."""
        return {
            event.originator_id: event.tenant_id
            for event in self._checkpoint_events(created_only=True)
            if tenant_id is None or event.tenant_id == tenant_id
        }

    def _checkpoint_events(self, *, created_only: bool = False) -> Iterator[Any]:
        """``CheckpointCreated`` (and ``CheckpointsPruned``) events of every run, in order."""
        classes = [Execution.CheckpointCreated] + ([] if created_only else [_CHECKPOINTS_PRUNED])
        topics = _topics_of(*classes)
        start = 1
        while True:
            with translate_persistence_errors():
                section = self.recorder.select_notifications(start, _SCAN_SECTION, topics=topics)
            if not section:
                return
            for notification in section:
                yield self.mapper.to_domain_event(notification)
            start = section[-1].id + 1

    @command_handler
    def fork_execution(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        checkpoint_id: str,
        workflow_version: int | None = None,
        state: bytes | None = None,
        known_steps: list[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome[Execution]:
        """Start a new run from one of a run's checkpoints; the run itself is not changed.

        Args:
            tenant_id: The caller's tenant.
            execution_id: The run to fork (in any state, also while it runs).
            checkpoint_id: Its checkpoint the fork starts from.
            workflow_version: The definition version the fork runs (default: the parent's).
            state: An edited state to start from instead of the checkpoint's (inline).
            known_steps: The steps of ``workflow_version``, to refuse a fork that would run a
                step the version lacks (``steps_not_in_version``).
            idempotency_key: See the class docstring.

        Returns:
            A result for the new run (``aggregate_id``) whose ``data`` has
            ``parent_execution_id``, ``forked_from_checkpoint_id`` and ``checkpoint_id`` (the
            fork's own first checkpoint, holding the state it starts from).
        """
        parent = self._get(tenant_id, execution_id)
        first = uuid.uuid4().hex
        forked = Execution.fork(
            parent,
            checkpoint_id,
            new_checkpoint_id=first,
            workflow_version=workflow_version,
            state=state,
            known_steps=known_steps,
        )
        data = {
            "parent_execution_id": str(parent.id),
            "forked_from_checkpoint_id": checkpoint_id,
            "checkpoint_id": first,
        }
        return Outcome(forked, data)

    @command_handler
    def request_human_approval(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        step_id: str,
        deadline: datetime,
        default_action: str,
        prompt: str | None = None,
        approvers: list[str] | None = None,
        approver_role: str | None = None,
        escalation: dict[str, Any] | None = None,
        now: datetime | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Hold a scheduled step for a human; ``default_action`` applies at ``deadline``.

        ``approvers`` (principals) and ``approver_role`` (least role) say who may decide;
        ``escalation`` who decides next when ``default_action`` is ``escalate``.
        """
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.request_human_approval(
            step_id,
            deadline=deadline,
            default_action=default_action,
            prompt=prompt,
            now=self.now(now),
            approvers=approvers,
            approver_role=approver_role,
            escalation=escalation,
        )
        return execution

    @command_handler
    def grant_approval(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        step_id: str,
        decided_by: str,
        comment: str | None = None,
        now: datetime | None = None,
        decider_roles: list[str] | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Approve the step's pending approval.

        Refused at or after the approval's deadline (``approval_deadline_passed``; ``now``
        defaults to the application's clock), and for a decider the approval does not allow
        (``not_an_approver``; the role is checked when ``decider_roles`` is given).
        """
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.grant_approval(
            step_id,
            decided_by=decided_by,
            comment=comment,
            now=self.now(now),
            decider_roles=decider_roles,
        )
        return execution

    @command_handler
    def reject_approval(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        step_id: str,
        decided_by: str,
        comment: str | None = None,
        now: datetime | None = None,
        decider_roles: list[str] | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Reject the step's pending approval; the step can't start.

        Refused at or after the approval's deadline (``approval_deadline_passed``; ``now``
        defaults to the application's clock), and for a decider the approval does not allow
        (``not_an_approver``; the role is checked when ``decider_roles`` is given).
        """
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.reject_approval(
            step_id,
            decided_by=decided_by,
            comment=comment,
            now=self.now(now),
            decider_roles=decider_roles,
        )
        return execution

    @command_handler
    def apply_approval_default(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        step_id: str,
        now: datetime | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Resolve an overdue approval with its default action (called by a timer)."""
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.apply_approval_default(step_id, now=self.now(now))
        return execution

    @command_handler
    def complete_execution(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        output: dict[str, Any] | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Finish a running run successfully."""
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.complete(output=output)
        return execution

    @command_handler
    def fail_execution(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        error: str,
        error_type: str | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """End a run as failed."""
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.fail(error=error, error_type=error_type)
        return execution

    @command_handler
    def halt_execution(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        reason: str,
        policy_id: str | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Stop a run because a policy (or an operator) said so."""
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.halt(reason=reason, policy_id=policy_id)
        return execution

    @command_handler
    def cancel_execution(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        reason: str | None = None,
        requested_by: str | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Cancel a run that has not ended."""
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.cancel(reason=reason, requested_by=requested_by)
        return execution

    # Queries -----------------------------------------------------------------------------

    def get_execution(self, tenant_id: str, execution_id: UUID) -> ExecutionView:
        """Return a run (checkpoints without their inline state).

        Raises:
            NotFoundError: No such run for this tenant.
        """
        check_tenant_id(tenant_id)
        return ExecutionView.of(self._get(tenant_id, execution_id))

    def get_checkpoint(
        self, tenant_id: str, execution_id: UUID, checkpoint_id: str
    ) -> CheckpointView:
        """Return one checkpoint with its inline state, to restore from.

        Raises:
            NotFoundError: No such run for this tenant.
            InvalidCommandError: ``unknown_checkpoint``.
            CheckpointPrunedError: Retention pruned it (its state is gone, it is not corrupt).
        """
        check_tenant_id(tenant_id)
        execution = self._get(tenant_id, execution_id)
        checkpoint = execution.checkpoints.get(checkpoint_id)
        if checkpoint is None:
            raise InvalidCommandError(
                f"execution {execution_id} has no checkpoint {checkpoint_id!r}",
                reason="unknown_checkpoint",
                field="checkpoint_id",
            )
        if checkpoint.pruned:
            raise execution.pruned_error(checkpoint)
        return CheckpointView.of(checkpoint, with_state=True)

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Save, then keep the saved runs in the aggregate cache as they now are.

        With fast-forward on, the library caches only what it reads back; a run this process
        just wrote is then one read behind. Keeping it at its saved version lets
        :meth:`advance_step` start from the version its caller wrote without a read.
        """
        recordings = super().save(*objs, **kwargs)
        cache = self.repository.cache
        if cache is not None and self.repository.fastforward:
            for obj in objs:
                if isinstance(obj, Execution) and not obj.pending_events:
                    cache.put(obj.id, obj)
        return recordings

    def _as_saved(
        self, tenant_id: str, execution_id: UUID, expected_version: int | None
    ) -> Execution:
        """The run at ``expected_version`` from the cache (no read), else loaded as usual.

        A run cached at the version its caller last wrote is the stored run unless someone
        wrote since; then the save fails on the store's unique (run, version) key and is a
        :class:`~omium.commands.errors.ConflictError` like any other.
        """
        cache = self.repository.cache
        if cache is not None and expected_version is not None:
            try:
                cached = cache.get(execution_id)
            except KeyError:
                cached = None
            if (
                isinstance(cached, Execution)
                and cached.version == expected_version
                and cached.tenant_id == tenant_id
            ):
                return copy.deepcopy(cached)
        return self._get(tenant_id, execution_id, expected_version)

    def _get(
        self, tenant_id: str, execution_id: UUID, expected_version: int | None = None
    ) -> Execution:
        return self.load(Execution, tenant_id, execution_id, expected_version=expected_version)
