"""The execution worker: runs steps, checkpoints state, reports outcomes as commands."""

from omium.kernel.blobs import (
    BlobStoreError,
    CheckpointBlobStore,
    CheckpointRef,
    CorruptCheckpointError,
)
from omium.worker._budget import RunBudget, Usage
from omium.worker._context import StepContext
from omium.worker._definitions import DefinitionCache
from omium.worker._errors import (
    AgentOutputError,
    BudgetExceededError,
    ConsensusFailedError,
    StepAttemptError,
    StepCancelledError,
    StepTimeoutError,
)
from omium.worker._executor import WORKER_LOST, StepExecutor
from omium.worker._heartbeat import Heartbeats
from omium.worker._orchestrator import Orchestrator
from omium.worker._retention import CheckpointJanitor, PruneReport
from omium.worker._runner import (
    build_services,
    new_worker_id,
    orchestrator_runtime,
    run_execution_worker,
)
from omium.worker._services import WorkerServices
from omium.worker._state import RunState, StateStore
from omium.worker._telemetry import FailureReport, Span, Telemetry
from omium.worker._work import (
    ORCHESTRATOR_APP,
    WorkItem,
    work_topic,
    worker_group,
)
from omium.worker._worker import ExecutionWorker

__all__ = [
    # checkpoint state
    "BlobStoreError",
    "CheckpointBlobStore",
    "CheckpointRef",
    "CorruptCheckpointError",
    "RunState",
    "StateStore",
    # checkpoint retention
    "CheckpointJanitor",
    "PruneReport",
    # what agents receive
    "StepContext",
    # orchestration
    "ORCHESTRATOR_APP",
    "Orchestrator",
    "WorkItem",
    "orchestrator_runtime",
    "work_topic",
    # the execution worker
    "DefinitionCache",
    "ExecutionWorker",
    "Heartbeats",
    "RunBudget",
    "StepExecutor",
    "Usage",
    "WORKER_LOST",
    "WorkerServices",
    "build_services",
    "new_worker_id",
    "run_execution_worker",
    "worker_group",
    # telemetry
    "FailureReport",
    "Span",
    "Telemetry",
    # errors
    "AgentOutputError",
    "BudgetExceededError",
    "ConsensusFailedError",
    "StepAttemptError",
    "StepCancelledError",
    "StepTimeoutError",
]
