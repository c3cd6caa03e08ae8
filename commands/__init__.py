"""The write side: event-sourced aggregates and the command handlers of their applications.

The gateway and the command worker call the applications' methods directly::

    env = event_store_env(settings)                 # or backend="popo" in tests
    with CommandApplications.create(env) as apps:
        result = apps.executions.start_execution("acme", workflow_id=wid, workflow_version=1)
        apps.executions.schedule_step("acme", result.aggregate_id, step_id="plan")

Every handler takes the caller's tenant first, accepts an ``idempotency_key``, returns a
:class:`CommandResult` and raises only the errors in :mod:`commands.errors`.
"""

from commands._application import CommandApplication
from commands._idempotency import IdempotencyRecord, IdempotencyStore, command_fingerprint
from commands._persistence import EVENT_STORE_SCHEMA, Backend, event_store_env
from commands._result import CommandResult
from commands._suite import CommandApplications
from commands.consensus import ConsensusApplication
from commands.errors import (
    AlreadyExistsError,
    ConflictError,
    EventStoreError,
    IdempotencyKeyReusedError,
    InvalidCommandError,
    InvalidPolicyError,
    InvalidTransitionError,
    NotFoundError,
    VoteRejectedError,
)
from commands.executions import ExecutionsApplication
from commands.policies import PoliciesApplication
from commands.workflows import WorkflowsApplication

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
    # Errors
    "AlreadyExistsError",
    "ConflictError",
    "EventStoreError",
    "IdempotencyKeyReusedError",
    "InvalidCommandError",
    "InvalidPolicyError",
    "InvalidTransitionError",
    "NotFoundError",
    "VoteRejectedError",
]
