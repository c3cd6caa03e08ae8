"""Executions: runs of workflows as an explicit state machine."""

from commands.executions._records import (
    INLINE_STATE_MAX_BYTES,
    ApprovalAction,
    ApprovalStatus,
    CheckpointPosition,
    CheckpointStorage,
    StepStatus,
)
from commands.executions._states import (
    ALLOWED_STATES,
    TERMINAL_STATES,
    ExecutionState,
)
from commands.executions._views import (
    ApprovalView,
    CheckpointView,
    ExecutionView,
    StepView,
)
from commands.executions.application import ExecutionsApplication
from commands.executions.domain import Execution

__all__ = [
    # Aggregate and its state machine
    "ALLOWED_STATES",
    "TERMINAL_STATES",
    "Execution",
    "ExecutionState",
    # Parts of a run
    "INLINE_STATE_MAX_BYTES",
    "ApprovalAction",
    "ApprovalStatus",
    "CheckpointPosition",
    "CheckpointStorage",
    "StepStatus",
    # Application and views
    "ApprovalView",
    "CheckpointView",
    "ExecutionView",
    "ExecutionsApplication",
    "StepView",
]
