"""Executions in every state, for state-machine tests (domain level, no store)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from omium.commands.executions import Execution, ExecutionState

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
BLOB = b'{"messages": ["hello"]}'
CHECKSUM = hashlib.sha256(BLOB).hexdigest()


def started() -> Execution:
    return Execution.start(
        tenant_id="acme", workflow_id=uuid4(), workflow_version=1, input={"topic": "x"}
    )


def checkpoint(execution: Execution, checkpoint_id: str, step_id: str) -> None:
    execution.create_checkpoint(
        checkpoint_id,
        step_id=step_id,
        position="before",
        checksum=CHECKSUM,
        size=len(BLOB),
        storage="inline",
        inline_state=BLOB,
    )


def execution_in(state: ExecutionState) -> Execution:
    """An execution in ``state`` with: step ``s1`` scheduled, checkpoint ``cp`` (before ``s1``);
    from ``running`` on also step ``r1`` running; in ``waiting_for_approval`` also step ``g1``
    scheduled with a pending approval (deadline one hour after ``NOW``).
    """
    execution = started()
    execution.schedule_step("s1", agent="agents:a")
    checkpoint(execution, "cp", "s1")
    if state is ExecutionState.PENDING:
        return execution
    execution.schedule_step("r1")
    execution.start_step("r1")
    if state is ExecutionState.WAITING_FOR_APPROVAL:
        execution.schedule_step("g1")
        execution.request_human_approval(
            "g1", deadline=NOW + timedelta(hours=1), default_action="approve", now=NOW
        )
    elif state is ExecutionState.COMPLETED:
        execution.complete_step("r1")
        execution.complete()
    elif state is ExecutionState.FAILED:
        execution.fail(error="worker lost")
    elif state is ExecutionState.HALTED:
        execution.halt(reason="budget exceeded", policy_id="budget")
    elif state is ExecutionState.CANCELLED:
        execution.cancel(reason="user")
    assert execution.state is state
    return execution


def issue(execution: Execution, command: str) -> None:
    """Issue ``command`` with arguments valid for the execution built by :func:`execution_in`."""
    if command == "complete_execution" and execution.state is ExecutionState.RUNNING:
        # A run can't complete while r1 is still running; finish it first.
        execution.complete_step("r1")
    commands = {
        "schedule_step": lambda: execution.schedule_step("new"),
        "start_step": lambda: execution.start_step("s1"),
        "complete_step": lambda: execution.complete_step("r1", output={"ok": True}),
        "fail_step": lambda: execution.fail_step("r1", error="timeout"),
        "create_checkpoint": lambda: checkpoint(execution, "cp2", "s1"),
        "roll_back_to_checkpoint": lambda: execution.roll_back("cp"),
        "request_human_approval": lambda: execution.request_human_approval(
            "s1", deadline=NOW + timedelta(hours=1), default_action="reject", now=NOW
        ),
        "grant_approval": lambda: execution.grant_approval("g1", decided_by="ops@acme"),
        "reject_approval": lambda: execution.reject_approval("g1", decided_by="ops@acme"),
        "apply_approval_default": lambda: execution.apply_approval_default(
            "g1", now=NOW + timedelta(hours=2)
        ),
        "complete_execution": lambda: execution.complete(output={"report": "done"}),
        "fail_execution": lambda: execution.fail(error="gave up"),
        "halt_execution": lambda: execution.halt(reason="policy deny"),
        "cancel_execution": lambda: execution.cancel(reason="user"),
    }
    commands[command]()
