"""``/api/v1/executions``: start runs, report steps and checkpoints, approvals, end runs.

Commands on an existing run answer ``200`` with the run's new version: the command is applied
and stored by the time the answer is sent (Kafka publication follows through the relay).
Creations (a run, a checkpoint) answer ``201`` with ``Location``. Every command takes
``If-Match: "<version>"`` or ``expected_version`` for optimistic concurrency, and
``Idempotency-Key``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, status
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from omium.commands import InvalidCommandError, NotFoundError
from omium.gateway._openapi import created, link, problems
from omium.gateway._policy import requires
from omium.gateway._principal import Role
from omium.gateway.api._execution_models import (
    CancelExecution,
    Checkpoint,
    CheckpointAccepted,
    CompleteExecution,
    CompleteStep,
    CreateCheckpoint,
    DecideApproval,
    Execution,
    ExecutionAccepted,
    FailExecution,
    FailStep,
    ForkAccepted,
    ForkExecution,
    HaltExecution,
    RequestApproval,
    RollBack,
    ScheduleStep,
    StartExecution,
)
from omium.gateway.api._models import ID_PATTERN, MAX_ID_LENGTH, EmptyRequest, location
from omium.gateway.api._support import CommandCall, Create, Read, Update

router = APIRouter(prefix="/executions", tags=["executions"])

_NEW_RUN = "$response.body#/execution_id"

StepId = Annotated[str, PathParam(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]
CheckpointId = Annotated[str, PathParam(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]


def _command(role: Role, name: str) -> list[Any]:
    return [requires(role, command=f"executions.{name}")]


# --- the run ----------------------------------------------------------------------------------


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ExecutionAccepted,
    summary="Start a run of a workflow version",
    dependencies=_command(Role.DEVELOPER, "start"),
    responses={
        **problems(404),
        **created(
            "The run was started.",
            GetExecution=link("/executions/{execution_id}", execution_id=_NEW_RUN),
            ScheduleStep=link("/executions/{execution_id}/steps", "post", execution_id=_NEW_RUN),
            CancelExecution=link(
                "/executions/{execution_id}/cancel", "post", execution_id=_NEW_RUN
            ),
        ),
    },
)
async def start_execution(body: StartExecution, call: Create) -> ExecutionAccepted:
    """Start a run; it is ``pending`` until its first step starts.

    The workflow must be the caller tenant's (else 404) and have ``workflow_version``. The
    run records that version's budget (``policies.budget``) on ``ExecutionStarted``.
    """
    definition = await _check_workflow_version(call, body.workflow_id, body.workflow_version)
    result = await call.create(
        call.apps.executions.start_execution,
        lambda eid: location("executions", eid),
        workflow_id=body.workflow_id,
        workflow_version=body.workflow_version,
        input=body.input,
        **_run_budget(definition),
    )
    return ExecutionAccepted.of(result)


def _run_budget(definition: dict[str, Any]) -> dict[str, Any]:
    """The version's ``policies.budget`` limits, read from the stored definition as the read
    model reads it (a stored definition need not be a runnable one); a malformed limit is none.
    """
    policies = definition.get("policies")
    budget = policies.get("budget") if isinstance(policies, dict) else None
    budget = budget if isinstance(budget, dict) else {}
    cost, tokens = budget.get("max_cost_usd"), budget.get("max_tokens")
    limits: dict[str, Any] = {"max_cost_usd": None, "max_tokens": None}
    if isinstance(cost, int | float) and not isinstance(cost, bool) and 0 <= cost < math.inf:
        limits["max_cost_usd"] = float(cost)
    if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0:
        limits["max_tokens"] = tokens
    return limits


async def _check_workflow_version(
    call: CommandCall, workflow_id: UUID, version: int
) -> dict[str, Any]:
    """The workflow's definition at ``version`` (refused as ``unknown_workflow_version``)."""
    try:
        view = await run_in_threadpool(
            call.apps.workflows.get_workflow,
            call.context.tenant_id,
            workflow_id,
            definition_version=version,
        )
    except InvalidCommandError as exc:
        if exc.reason != "unknown_version":
            raise
        raise InvalidCommandError(
            f"workflow {workflow_id} has no version {version}",
            reason="unknown_workflow_version",
            field="workflow_version",
        ) from None
    return dict(view.definition)


@router.get(
    "/{execution_id}",
    response_model=Execution,
    summary="Read a run",
    dependencies=[requires(Role.VIEWER)],
)
async def get_execution(execution_id: UUID, call: Read) -> Execution:
    """A run with its steps, checkpoints (without state) and approvals; ``ETag`` is its version."""
    return Execution.of(await call.run(call.apps.executions.get_execution, execution_id))


@router.post(
    "/{execution_id}/complete",
    response_model=ExecutionAccepted,
    summary="Complete a running run",
    dependencies=_command(Role.DEVELOPER, "complete"),
    responses=problems(409),
)
async def complete_execution(
    execution_id: UUID, call: Update, body: CompleteExecution | None = None
) -> ExecutionAccepted:
    """Finish the run successfully (refused while a step is still running)."""
    result = await call.update(
        call.apps.executions.complete_execution,
        execution_id,
        body,
        output=body.output if body else None,
    )
    return ExecutionAccepted.of(result)


@router.post(
    "/{execution_id}/fail",
    response_model=ExecutionAccepted,
    summary="End a run as failed",
    dependencies=_command(Role.DEVELOPER, "fail"),
    responses=problems(409),
)
async def fail_execution(
    execution_id: UUID, body: FailExecution, call: Update
) -> ExecutionAccepted:
    """End the run as failed (recovery gave up, or it cannot go on)."""
    result = await call.update(
        call.apps.executions.fail_execution,
        execution_id,
        body,
        error=body.error,
        error_type=body.error_type,
    )
    return ExecutionAccepted.of(result)


@router.post(
    "/{execution_id}/halt",
    response_model=ExecutionAccepted,
    summary="Halt a run",
    dependencies=_command(Role.OPERATOR, "halt"),
    responses=problems(409),
)
async def halt_execution(
    execution_id: UUID, body: HaltExecution, call: Update
) -> ExecutionAccepted:
    """Stop the run because a policy or an operator said so."""
    result = await call.update(
        call.apps.executions.halt_execution,
        execution_id,
        body,
        reason=body.reason,
        policy_id=body.policy_id,
    )
    return ExecutionAccepted.of(result)


@router.post(
    "/{execution_id}/cancel",
    response_model=ExecutionAccepted,
    summary="Cancel a run",
    dependencies=_command(Role.DEVELOPER, "cancel"),
    responses=problems(409),
)
async def cancel_execution(
    execution_id: UUID, call: Update, body: CancelExecution | None = None
) -> ExecutionAccepted:
    """Cancel a run that has not ended; the caller is recorded as the requester."""
    result = await call.update(
        call.apps.executions.cancel_execution,
        execution_id,
        body,
        reason=body.reason if body else None,
        requested_by=call.context.principal.subject,
    )
    return ExecutionAccepted.of(result)


# --- steps ------------------------------------------------------------------------------------


@router.post(
    "/{execution_id}/steps",
    response_model=ExecutionAccepted,
    summary="Schedule a step (or retry a failed one)",
    dependencies=_command(Role.DEVELOPER, "schedule_step"),
    responses=problems(409),
)
async def schedule_step(execution_id: UUID, body: ScheduleStep, call: Update) -> ExecutionAccepted:
    """Schedule a step; a failed step may be scheduled again (a retry)."""
    result = await call.update(
        call.apps.executions.schedule_step,
        execution_id,
        body,
        step_id=body.step_id,
        agent=body.agent,
    )
    return ExecutionAccepted.of(result)


@router.post(
    "/{execution_id}/steps/{step_id}/start",
    response_model=ExecutionAccepted,
    summary="Start a scheduled step",
    dependencies=_command(Role.DEVELOPER, "start_step"),
    responses=problems(409),
)
async def start_step(
    execution_id: UUID, step_id: StepId, call: Update, body: EmptyRequest | None = None
) -> ExecutionAccepted:
    """Start a scheduled step; the first one moves the run from pending to running."""
    result = await call.update(call.apps.executions.start_step, execution_id, body, step_id=step_id)
    return ExecutionAccepted.of(result)


@router.post(
    "/{execution_id}/steps/{step_id}/complete",
    response_model=ExecutionAccepted,
    summary="Complete a running step",
    dependencies=_command(Role.DEVELOPER, "complete_step"),
    responses=problems(409),
)
async def complete_step(
    execution_id: UUID, step_id: StepId, call: Update, body: CompleteStep | None = None
) -> ExecutionAccepted:
    """Record a running step's output."""
    result = await call.update(
        call.apps.executions.complete_step,
        execution_id,
        body,
        step_id=step_id,
        output=body.output if body else None,
    )
    return ExecutionAccepted.of(result)


@router.post(
    "/{execution_id}/steps/{step_id}/fail",
    response_model=ExecutionAccepted,
    summary="Fail a running step's attempt",
    dependencies=_command(Role.DEVELOPER, "fail_step"),
    responses=problems(409),
)
async def fail_step(
    execution_id: UUID, step_id: StepId, body: FailStep, call: Update
) -> ExecutionAccepted:
    """Record a failed attempt of a running step; recovery decides what happens next."""
    result = await call.update(
        call.apps.executions.fail_step,
        execution_id,
        body,
        step_id=step_id,
        error=body.error,
        error_type=body.error_type,
        retryable=body.retryable,
    )
    return ExecutionAccepted.of(result)


# --- checkpoints ------------------------------------------------------------------------------


@router.post(
    "/{execution_id}/checkpoints",
    status_code=status.HTTP_201_CREATED,
    response_model=CheckpointAccepted,
    summary="Record a checkpoint",
    dependencies=_command(Role.DEVELOPER, "create_checkpoint"),
    responses=problems(409),
)
async def create_checkpoint(
    execution_id: UUID, body: CreateCheckpoint, call: Update
) -> CheckpointAccepted:
    """Record a checkpoint of the run's state; inline state must match its checksum."""
    result = await call.update(
        call.apps.executions.create_checkpoint,
        execution_id,
        body,
        step_id=body.step_id,
        position=body.position,
        checksum=body.checksum,
        size=body.size,
        storage=body.storage,
        inline_state=body.state_bytes(),
        object_key=body.object_key,
        checkpoint_id=body.checkpoint_id,
    )
    accepted = CheckpointAccepted.of(result)
    call.response.headers["Location"] = location(
        "executions", execution_id, "checkpoints", accepted.checkpoint_id
    )
    return accepted


@router.get(
    "/{execution_id}/checkpoints/{checkpoint_id}",
    response_model=Checkpoint,
    summary="Read a checkpoint with its inline state",
    dependencies=[requires(Role.VIEWER)],
    responses=problems(410),
)
async def get_checkpoint(execution_id: UUID, checkpoint_id: CheckpointId, call: Read) -> Checkpoint:
    """One checkpoint, with its inline state (base64) to restore from."""
    try:
        view = await call.run(call.apps.executions.get_checkpoint, execution_id, checkpoint_id)
    except InvalidCommandError as exc:
        if exc.reason != "unknown_checkpoint":
            raise
        raise NotFoundError(checkpoint_id, aggregate_type="Checkpoint") from None
    return Checkpoint.of(view)


@router.post(
    "/{execution_id}/rollback",
    response_model=ExecutionAccepted,
    summary="Roll a run back to a checkpoint",
    dependencies=_command(Role.OPERATOR, "roll_back"),
    responses=problems(409, 410),
)
async def roll_back_to_checkpoint(
    execution_id: UUID, body: RollBack, call: Update
) -> ExecutionAccepted:
    """Restore the steps as they were at the checkpoint, so the run resumes from there."""
    result = await call.update(
        call.apps.executions.roll_back_to_checkpoint,
        execution_id,
        body,
        checkpoint_id=body.checkpoint_id,
        reason=body.reason,
    )
    return ExecutionAccepted.of(result)


# --- forks ------------------------------------------------------------------------------------


@router.post(
    "/{execution_id}/fork",
    status_code=status.HTTP_201_CREATED,
    response_model=ForkAccepted,
    summary="Fork a run from one of its checkpoints into a new run",
    dependencies=_command(Role.OPERATOR, "fork"),
    responses=problems(409, 410),
)
async def fork_execution(execution_id: UUID, body: ForkExecution, call: Create) -> ForkAccepted:
    """Start a new run where this one was at a checkpoint; this run is not changed.

    The fork runs the run's input with the given (or the run's) definition version: steps that
    had completed at the checkpoint stay completed, the others run again, starting from the
    checkpoint's state or the edited ``state``. ``Location`` names the new run. A version the
    workflow lacks is a 422 ``unknown_workflow_version``; a version without a step the fork must
    run again is a 422 ``steps_not_in_version``.
    """
    steps = None
    if body.workflow_version is not None:
        parent = await run_in_threadpool(
            call.apps.executions.get_execution, call.context.tenant_id, execution_id
        )
        steps = await _steps_of_version(call, parent.workflow_id, body.workflow_version)
    result = await call.create(
        call.apps.executions.fork_execution,
        lambda eid: location("executions", eid),
        execution_id=execution_id,
        checkpoint_id=body.checkpoint_id,
        workflow_version=body.workflow_version,
        state=body.state_bytes(),
        known_steps=steps,
    )
    return ForkAccepted.of(result)


async def _steps_of_version(call: CommandCall, workflow_id: UUID, version: int) -> list[str]:
    await _check_workflow_version(call, workflow_id, version)
    workflow = await run_in_threadpool(
        call.apps.workflows.get_workflow,
        call.context.tenant_id,
        workflow_id,
        definition_version=version,
    )
    steps = workflow.definition.get("steps")
    if not isinstance(steps, list):
        return []
    return sorted(str(step["id"]) for step in steps if isinstance(step, dict) and "id" in step)


# --- human approvals --------------------------------------------------------------------------


@router.post(
    "/{execution_id}/steps/{step_id}/approval",
    response_model=ExecutionAccepted,
    summary="Hold a scheduled step for a human approval",
    dependencies=_command(Role.DEVELOPER, "request_approval"),
    responses=problems(409),
)
async def request_human_approval(
    execution_id: UUID, step_id: StepId, body: RequestApproval, call: Update
) -> ExecutionAccepted:
    """Gate a scheduled step; ``default_action`` applies at ``deadline``. Other steps go on."""
    result = await call.update(
        call.apps.executions.request_human_approval,
        execution_id,
        body,
        step_id=step_id,
        deadline=body.deadline,
        default_action=body.default_action,
        prompt=body.prompt,
        approvers=body.approvers,
        approver_role=body.approver_role,
        escalation=None if body.escalation is None else body.escalation.model_dump(),
    )
    return ExecutionAccepted.of(result)


@router.post(
    "/{execution_id}/steps/{step_id}/approval/grant",
    response_model=ExecutionAccepted,
    summary="Approve a pending approval",
    dependencies=_command(Role.OPERATOR, "grant_approval"),
    responses=problems(409),
)
async def grant_approval(
    execution_id: UUID, step_id: StepId, call: Update, body: DecideApproval | None = None
) -> ExecutionAccepted:
    """Approve the gated step (the caller is recorded as the decider); it may start."""
    result = await call.update(
        call.apps.executions.grant_approval,
        execution_id,
        body,
        step_id=step_id,
        decided_by=call.context.principal.subject,
        comment=body.comment if body else None,
        decider_roles=_roles(call),
    )
    return ExecutionAccepted.of(result)


@router.post(
    "/{execution_id}/steps/{step_id}/approval/reject",
    response_model=ExecutionAccepted,
    summary="Reject a pending approval",
    dependencies=_command(Role.OPERATOR, "reject_approval"),
    responses=problems(409),
)
async def reject_approval(
    execution_id: UUID, step_id: StepId, call: Update, body: DecideApproval | None = None
) -> ExecutionAccepted:
    """Reject the gated step (the caller is recorded as the decider); it must not start."""
    result = await call.update(
        call.apps.executions.reject_approval,
        execution_id,
        body,
        step_id=step_id,
        decided_by=call.context.principal.subject,
        comment=body.comment if body else None,
        decider_roles=_roles(call),
    )
    return ExecutionAccepted.of(result)


def _roles(call: CommandCall) -> list[str]:
    """The caller's roles, for an approval that names the least role of its decider."""
    return sorted(role.value for role in call.context.principal.roles)


@router.post(
    "/{execution_id}/steps/{step_id}/approval/apply-default",
    response_model=ExecutionAccepted,
    summary="Resolve an overdue approval with its default action",
    dependencies=_command(Role.OPERATOR, "apply_approval_default"),
    responses=problems(409),
)
async def apply_approval_default(
    execution_id: UUID, step_id: StepId, call: Update, body: EmptyRequest | None = None
) -> ExecutionAccepted:
    """Apply the default action of an approval whose deadline has passed (else 422)."""
    result = await call.update(
        call.apps.executions.apply_approval_default, execution_id, body, step_id=step_id
    )
    return ExecutionAccepted.of(result)
