"""Command handlers and queries for executions (runs)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

from commands._application import CommandApplication, check_tenant_id, command_handler
from commands._result import Outcome
from commands.errors import InvalidCommandError
from commands.executions._views import CheckpointView, ExecutionView
from commands.executions.domain import Execution


class ExecutionsApplication(CommandApplication):
    """Runs of workflows: steps, checkpoints, rollbacks, human approvals, and how runs end.

    Every handler takes the caller's ``tenant_id`` first and, for an existing run, its
    ``execution_id``; another tenant's run is reported as not found. Every handler also takes:

    - ``expected_version``: the run's version the caller last saw; a different current version
      raises :class:`~commands.errors.ConflictError` instead of applying the command.
    - ``idempotency_key``: the same key again returns the first result and writes nothing.

    Handlers return a :class:`~commands.CommandResult`. Refusals raise
    :class:`~commands.errors.InvalidTransitionError` (wrong state, naming command and state),
    :class:`~commands.errors.InvalidCommandError` (bad arguments, with a ``reason``),
    :class:`~commands.errors.NotFoundError` or :class:`~commands.errors.ConflictError`.
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
        idempotency_key: str | None = None,
    ) -> Execution:
        """Start a run of a workflow version; it gets a new random id and is ``pending``."""
        return Execution.start(
            tenant_id=tenant_id,
            workflow_id=workflow_id,
            workflow_version=workflow_version,
            input=input,
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
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Record a running step's output."""
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.complete_step(step_id, output=output)
        return execution

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
    def request_human_approval(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        step_id: str,
        deadline: datetime,
        default_action: str,
        prompt: str | None = None,
        now: datetime | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Hold a scheduled step for a human; ``default_action`` applies at ``deadline``."""
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.request_human_approval(
            step_id,
            deadline=deadline,
            default_action=default_action,
            prompt=prompt,
            now=self.now(now),
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
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Approve the step's pending approval."""
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.grant_approval(step_id, decided_by=decided_by, comment=comment)
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
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Reject the step's pending approval; the step can't start."""
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.reject_approval(step_id, decided_by=decided_by, comment=comment)
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
        return CheckpointView.of(checkpoint, with_state=True)

    def _get(
        self, tenant_id: str, execution_id: UUID, expected_version: int | None = None
    ) -> Execution:
        return self.load(Execution, tenant_id, execution_id, expected_version=expected_version)
