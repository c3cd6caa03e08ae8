"""The orchestrator: turns a run's events into its next steps, for every run, exactly once.

A stream processor (``omium worker orchestrator``) on ``<prefix>.executions`` and
``<prefix>.failures``, keyed by execution id, with one state table (``runs``) holding each run's
step graph and step statuses (see :mod:`omium.worker._tracker`):

- ``ExecutionStarted`` → ``schedule_step`` for every step that needs nothing;
- ``StepScheduled`` (or a rollback, or an approval granted) → a work item on
  ``<prefix>.streams.orchestrator.work`` for the execution workers;
- ``StepCompleted`` → ``schedule_step`` for the steps that became ready, and
  ``complete_execution`` once every step completed;
- ``RecoveryPlanned`` → the backoff or fallback model of the retry it planned, carried by the
  next work item of that step.

Work items are produced in the runtime's Kafka transaction, with the state and the consumed
offsets. Commands go to the event store through the command handlers (as the command worker
does), outside the transaction, so each carries an idempotency key derived from the event that
caused it: an event processed again after a crash repeats the command and writes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from commands import CommandApplications, CommandResult, ConflictError
from omium.kernel.errors import DomainError, PersistenceError
from omium.sdk.workflow import WorkflowDefinition
from omium.worker import _tracker as tracker
from omium.worker._definitions import DefinitionCache
from omium.worker._work import ORCHESTRATOR_APP, WORK_SUFFIX, WorkItem
from streams.base import Context, Processor, derived_id

log = logging.getLogger(__name__)

RUNS = "runs"
_CONFLICT_RETRIES = 5


class Orchestrator(Processor):
    """Drives every run of an Omium workflow definition through its step graph.

    Args:
        apps: The command applications (schedule steps, complete and fail runs).
        definitions: Where workflow definitions are loaded from (default: ``apps.workflows``).
    """

    name = ORCHESTRATOR_APP
    tables = (RUNS,)

    def __init__(
        self, apps: CommandApplications, *, definitions: DefinitionCache | None = None
    ) -> None:
        """Act on runs through ``apps``."""
        self._apps = apps
        self._definitions = definitions or DefinitionCache(apps.workflows)
        self.stats = {"scheduled": 0, "dispatched": 0, "completed": 0, "refused": 0}

    def input_areas(self) -> Sequence[str]:
        """Run events, and recovery plans (for backoffs and fallback models)."""
        return ["executions", "failures"]

    def handle(self, ctx: Context) -> None:
        """Update the run's tracker with the event and perform what it decides."""
        event = ctx.event
        assert event is not None
        execution = _execution_of(event)
        if execution is None:
            return
        state = ctx.get(RUNS, execution)
        actions: list[tracker.Action]
        if event["event_type"] == "ExecutionStarted" and state is None:
            state = self._new_run(event)
            actions = [] if state.get("ignored") else tracker.start(state)
        elif state is None or state.get("ignored"):
            return  # a run started before the orchestrator knew it, or not an Omium workflow
        else:
            actions = tracker.apply(state, event)
        for action in actions:
            self._perform(ctx, execution, state, event, action)
        ctx.put(RUNS, execution, state)

    # ------------------------------------------------------------------ run state

    def _new_run(self, event: dict[str, Any]) -> dict[str, Any]:
        payload = event["payload"]
        tenant = event["tenant_id"]
        workflow = str(payload["workflow_id"])
        version = int(payload["workflow_version"])
        definition = self._definitions.get(tenant, workflow, version)
        if definition is None:
            return {"ignored": True}
        return tracker.new_run(
            tenant_id=tenant,
            workflow_id=workflow,
            workflow_version=version,
            needs=definition.dependencies(),
            agents=_agents(definition),
        )

    # ------------------------------------------------------------------ actions

    def _perform(
        self,
        ctx: Context,
        execution: str,
        state: dict[str, Any],
        event: dict[str, Any],
        action: tracker.Action,
    ) -> None:
        tenant, run = state["tenant"], UUID(execution)
        cause = str(event["event_id"])
        executions = self._apps.executions
        if isinstance(action, tracker.Dispatch):
            self._dispatch(ctx, execution, state, cause, action)
        elif isinstance(action, tracker.Schedule):
            key = str(derived_id(ORCHESTRATOR_APP, cause, "schedule", action.step_id))
            self._command(
                "schedule_step",
                lambda: executions.schedule_step(
                    tenant, run, step_id=action.step_id, agent=action.agent, idempotency_key=key
                ),
            )
            self.stats["scheduled"] += 1
        elif isinstance(action, tracker.CompleteRun):
            key = str(derived_id(ORCHESTRATOR_APP, cause, "complete"))
            self._command(
                "complete_execution",
                lambda: executions.complete_execution(
                    tenant, run, output=action.output, idempotency_key=key
                ),
            )
            self.stats["completed"] += 1
        else:
            key = str(derived_id(ORCHESTRATOR_APP, cause, "fail"))
            self._command(
                "fail_execution",
                lambda: executions.fail_execution(
                    tenant, run, error=action.error, error_type=action.error_type,
                    idempotency_key=key,
                ),
            )

    def _dispatch(
        self,
        ctx: Context,
        execution: str,
        state: dict[str, Any],
        cause: str,
        action: tracker.Dispatch,
    ) -> None:
        item = WorkItem(
            dispatch_id=str(derived_id(ORCHESTRATOR_APP, cause, "dispatch", action.step_id)),
            tenant_id=state["tenant"],
            execution_id=execution,
            workflow_id=state["workflow_id"],
            workflow_version=state["version"],
            step_id=action.step_id,
            reason=action.reason,
            agent=action.agent,
            model=action.model,
            restore_checkpoint_id=action.restore_checkpoint_id,
            not_before=action.not_before,
        )
        ctx.send_internal(WORK_SUFFIX, key=execution, record=item.to_record())
        self.stats["dispatched"] += 1

    def _command(self, name: str, apply: Callable[[], CommandResult]) -> None:
        """Apply a command; refusals (the run moved on meanwhile) are logged, not raised."""
        for attempt in range(_CONFLICT_RETRIES):
            try:
                apply()
                return
            except ConflictError:
                # Another writer (a worker, the command worker) got there first: reload, retry.
                time.sleep(0.02 * (attempt + 1))
            except DomainError as exc:
                self.stats["refused"] += 1
                log.info("%s refused: %s", name, exc)
                return
        # A PersistenceError makes the runtime retry the event (with the same idempotency keys).
        raise PersistenceError(f"{name} kept conflicting with other writers; retrying the event")


def _execution_of(event: dict[str, Any]) -> str | None:
    if event["event_type"] in ("RecoveryPlanned", "FailureDetected"):
        execution = event["payload"].get("execution_id")
        return None if execution is None else str(execution)
    return str(event["aggregate_id"])


def _agents(definition: WorkflowDefinition) -> dict[str, str | None]:
    return {step.id: step.agent for step in definition.steps}
