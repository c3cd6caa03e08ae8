"""Executions: runs of workflows as an explicit state machine."""

from omium.commands.executions._records import (
    INLINE_STATE_MAX_BYTES,
    ApprovalAction,
    ApprovalStatus,
    CheckpointPosition,
    CheckpointStorage,
    StepStatus,
)
from omium.commands.executions._states import (
    ALLOWED_STATES,
    TERMINAL_STATES,
    ExecutionState,
)
from omium.commands.executions._suggestion_commands import SuggestionsView, SuggestionView
from omium.commands.executions._suggestions import (
    FIX_ACTIONS,
    RecoverySuggestions,
    SuggestionStatus,
)
from omium.commands.executions._views import (
    ApprovalView,
    CheckpointView,
    ExecutionView,
    StepView,
)
from omium.commands.executions.application import ExecutionsApplication
from omium.commands.executions.domain import Execution

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
    # Recovery suggestions
    "FIX_ACTIONS",
    "RecoverySuggestions",
    "SuggestionStatus",
    "SuggestionView",
    "SuggestionsView",
]
