"""The execution state machine: which command is allowed in which state.

::

    pending ──start_step──► running ◄──approval resolved──┐
       │                       │                          │
       │                       └─request_human_approval─► waiting_for_approval
       │
       └──── fail | halt | cancel (from pending, running, waiting) ──► failed | halted | cancelled
                 running ──complete──► completed

Commands are named as the application's handlers (``complete_execution``), so the name in an
:class:`~omium.commands.errors.InvalidTransitionError` is the one the caller used.

Steps of other branches keep going while an approval is pending (one branch's wait never blocks
another), so step commands are allowed in ``waiting_for_approval`` too; only the gated step is
held back.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from omium.commands.errors import InvalidTransitionError


class ExecutionState(StrEnum):
    """Where a run is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING_FOR_APPROVAL = "waiting_for_approval"
    COMPLETED = "completed"
    FAILED = "failed"
    HALTED = "halted"
    CANCELLED = "cancelled"


TERMINAL_STATES = frozenset(
    {
        ExecutionState.COMPLETED,
        ExecutionState.FAILED,
        ExecutionState.HALTED,
        ExecutionState.CANCELLED,
    }
)
"""States a run never leaves."""

_ACTIVE = frozenset(
    {ExecutionState.PENDING, ExecutionState.RUNNING, ExecutionState.WAITING_FOR_APPROVAL}
)
_STARTED = frozenset({ExecutionState.RUNNING, ExecutionState.WAITING_FOR_APPROVAL})
_WAITING = frozenset({ExecutionState.WAITING_FOR_APPROVAL})

ALLOWED_STATES: dict[str, frozenset[ExecutionState]] = {
    "schedule_step": _ACTIVE,
    "start_step": _ACTIVE,
    "complete_step": _STARTED,
    "fail_step": _STARTED,
    "create_checkpoint": _ACTIVE,
    # Rolling back while an approval is pending would orphan the approval; resolve it first.
    "roll_back_to_checkpoint": frozenset({ExecutionState.RUNNING}),
    "request_human_approval": _ACTIVE,
    "grant_approval": _WAITING,
    "reject_approval": _WAITING,
    "apply_approval_default": _WAITING,
    "complete_execution": frozenset({ExecutionState.RUNNING}),
    "fail_execution": _ACTIVE,
    "halt_execution": _ACTIVE,
    "cancel_execution": _ACTIVE,
}
"""For each execution command, the states in which it is accepted."""


def check_transition(command: str, state: ExecutionState, execution_id: UUID) -> None:
    """Refuse ``command`` unless ``state`` allows it.

    Raises:
        InvalidTransitionError: Naming the command and the current state.
    """
    if state not in ALLOWED_STATES[command]:
        raise InvalidTransitionError(
            command=command, current_state=state.value, aggregate_id=execution_id
        )
