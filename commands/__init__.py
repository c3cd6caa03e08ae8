"""The write side: event-sourced aggregates and the command handlers of their applications.

The gateway and the command worker call the applications' methods directly::

    env = event_store_env(settings)                 # or backend="popo" in tests
    with CommandApplications.create(env) as apps:
        result = apps.executions.start_execution("acme", workflow_id=wid, workflow_version=1)
        apps.executions.schedule_step("acme", result.aggregate_id, step_id="plan")

Every handler takes the caller's tenant first, accepts an ``idempotency_key``, returns a
:class:`CommandResult` and raises only the errors in :mod:`omium.commands.errors`.
"""

from omium.commands._application import CommandApplication
from omium.commands._idempotency import IdempotencyRecord, IdempotencyStore, command_fingerprint
from omium.commands._persistence import EVENT_STORE_SCHEMA, Backend, event_store_env
from omium.commands._postgres import writers_lock_statement
from omium.commands._result import CommandResult
from omium.commands._suite import CommandApplications
from omium.commands._topics import register_legacy_topics
from omium.commands.consensus import ConsensusApplication
from omium.commands.consensus.domain import ConsensusRound
from omium.commands.errors import (
    AlreadyExistsError,
    CheckpointPrunedError,
    ConflictError,
    EventStoreError,
    IdempotencyKeyReusedError,
    InvalidCommandError,
    InvalidPolicyError,
    InvalidTransitionError,
    NotFoundError,
    VoteRejectedError,
)
from omium.commands.executions import ExecutionsApplication
from omium.commands.executions.domain import Execution
from omium.commands.policies import PoliciesApplication
from omium.commands.policies.domain import Policy
from omium.commands.workflows import WorkflowsApplication
from omium.commands.workflows.domain import Workflow

register_legacy_topics(ConsensusRound, Execution, Policy, Workflow)

__all__ = [
    # Applications
    "CommandApplication",
    "CommandApplications",
    "ConsensusApplication",
    "ExecutionsApplication",
    "PoliciesApplication",
    "WorkflowsApplication",
    # Results and idempotency
    "CommandResult",
    "IdempotencyRecord",
    "IdempotencyStore",
    "command_fingerprint",
    # Configuration
    "EVENT_STORE_SCHEMA",
    "Backend",
    "event_store_env",
    "writers_lock_statement",
    # Errors
    "AlreadyExistsError",
    "CheckpointPrunedError",
    "ConflictError",
    "EventStoreError",
    "IdempotencyKeyReusedError",
    "InvalidCommandError",
    "InvalidPolicyError",
    "InvalidTransitionError",
    "NotFoundError",
    "VoteRejectedError",
]
