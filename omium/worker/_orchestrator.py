"""The orchestrator: turns a run's events into its next steps, for every run, exactly once.

A stream processor (``omium worker orchestrator``) on ``<prefix>.executions`` and
``<prefix>.failures``, keyed by execution id, with one state table (``runs``) holding each run's
step graph and step statuses (see :mod:`omium.worker._tracker`):

- ``ExecutionStarted`` → ``schedule_step`` for every step that needs nothing; for a fork, a
  work item for each step it runs again (from the fork's first checkpoint) and ``schedule_step``
  for what is ready after the steps it kept;
- ``StepScheduled`` of a step whose definition requires an ``approval`` (and that was not
  approved yet) → ``request_human_approval`` with its deadline and default (the approvals
  processor applies it when nobody decides in time); it is dispatched once granted;
- ``StepScheduled`` (or a rollback, or an approval granted) → a work item on
  ``<prefix>.streams.orchestrator.work`` for the execution workers;
- ``StepCompleted`` → ``schedule_new_step`` for the steps that became ready, and
  ``complete_execution`` once every step completed; a step the worker of its predecessor
  already scheduled and started in the same save (a pipelined step) refuses it, and its
  ``StepScheduled`` is then not dispatched;
- ``RecoveryPlanned`` → the backoff or fallback model of the retry it planned, carried by the
  next work item of that step.

Tenant concurrency limits (:mod:`omium.worker._admission`): a run's first steps are scheduled
only once the tenant's admission stage admits it, and every work item passes through that stage
too, so runs and steps over a limit (``ConcurrencyLimitsSet``, on ``<prefix>.workflows``) wait in
line, in order. The stage runs in this same processor, on the internal topic
``<prefix>.streams.orchestrator.admission`` keyed by tenant; this stage tells it what starts and
ends (runs, steps) and it answers with an ``admit`` record (keyed by the run) or the work item.

Work items are produced in the runtime's Kafka transaction, with the state and the consumed
offsets. Commands go to the event store through the command handlers (as the command worker
does), outside the transaction, so each carries an idempotency key derived from the event that
caused it: an event processed again after a crash repeats the command and writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog

from omium.commands import (
    CommandApplications,
    CommandResult,
    ConflictError,
    IdempotencyKeyReusedError,
    InvalidCommandError,
)
from omium.kernel.errors import DomainError, PersistenceError
from omium.sdk.workflow import WorkflowDefinition
from omium.streams.base import Context, Processor, derived_id
from omium.worker import _admission as admission
from omium.worker import _tracker as tracker
from omium.worker._definitions import DefinitionCache
from omium.worker._work import ORCHESTRATOR_APP, WORK_SUFFIX, WorkItem

log = structlog.get_logger(__name__)

RUNS = "runs"
_CONFLICT_RETRIES = 5
_ENDING = frozenset(
    {"ExecutionCompleted", "ExecutionFailed", "ExecutionHalted", "ExecutionCancelled"}
)


class Orchestrator(Processor):
    """Drives every run of an Omium workflow definition through its step graph.

    Args:
        apps: The command applications (schedule steps, complete and fail runs).
        definitions: Where workflow definitions are loaded from (default: ``apps.workflows``).
    """

    name = ORCHESTRATOR_APP
    tables = (RUNS, admission.ADMISSION)

    def __init__(
        self, apps: CommandApplications, *, definitions: DefinitionCache | None = None
    ) -> None:
        """Act on runs through ``apps``."""
        self._apps = apps
        self._definitions = definitions or DefinitionCache(apps.workflows)
        self.stats = {
            "scheduled": 0,
            "pipelined": 0,
            "dispatched": 0,
            "completed": 0,
            "refused": 0,
        }

    def input_areas(self) -> Sequence[str]:
        """Run events, recovery plans (backoffs, fallback models) and concurrency limits."""
        return ["executions", "failures", "workflows"]

    def internal_inputs(self) -> Sequence[str]:
        """The admission stage's topic (keyed by tenant; ``admit`` records keyed by run)."""
        return [admission.ADMISSION_SUFFIX]

    def handle(self, ctx: Context) -> None:
        """Update the run's tracker with the event and perform what it decides."""
        event = ctx.event
        assert event is not None
        if ctx.source is not None and ctx.source.topic.endswith(f".{admission.ADMISSION_SUFFIX}"):
            self._admission(ctx, event)
            return
        if event["event_type"] == "ConcurrencyLimitsSet":
            self._to_tenant(
                ctx,
                event["tenant_id"],
                {"kind": "limits", "limits": admission.limits_of(event["payload"])},
            )
            return
        execution = _execution_of(event)
        if execution is None:
            return
        state = ctx.get(RUNS, execution)
        actions: list[tracker.Action]
        if event["event_type"] == "ExecutionStarted" and state is None:
            state = self._new_run(event)
            fork = event["payload"].get("fork")
            actions = []
            if not state.get("ignored"):
                # It starts once the tenant's admission stage admits it (at once without limits).
                at = event.get("occurred_at")
                state["pending_start"] = {
                    "cause": str(event["event_id"]),
                    "fork": fork,
                    "at": at.isoformat() if isinstance(at, datetime) else None,
                }
                self._to_run_counts(ctx, state, execution, "run_started")
        elif state is None or state.get("ignored"):
            return  # a run started before the orchestrator knew it, or not an Omium workflow
        else:
            actions = tracker.apply(state, event)
            self._count(ctx, state, execution, event)
        for action in actions:
            self._perform(ctx, execution, state, event, action)
        ctx.put(RUNS, execution, state)

    # ------------------------------------------------------------------ admission

    def _count(
        self, ctx: Context, state: dict[str, Any], execution: str, event: dict[str, Any]
    ) -> None:
        """Tell the tenant's admission stage about a step or the run starting or ending."""
        kind = event["event_type"]
        if kind in _ENDING:
            self._to_run_counts(ctx, state, execution, "run_ended")
        elif kind == "StepStarted":
            step = str(event["payload"]["step_id"])
            self._to_run_counts(ctx, state, execution, "step_started", step=step)
        elif kind in ("StepCompleted", "StepFailed"):
            step = str(event["payload"]["step_id"])
            self._to_run_counts(ctx, state, execution, "step_ended", step=step)

    def _to_run_counts(
        self, ctx: Context, state: dict[str, Any], execution: str, kind: str, **more: Any
    ) -> None:
        record = {
            "kind": kind,
            "tenant": state["tenant"],
            "execution": execution,
            "workflow": state["workflow_id"],
            **more,
        }
        self._to_tenant(ctx, state["tenant"], record)

    @staticmethod
    def _to_tenant(ctx: Context, tenant: str, record: dict[str, Any]) -> None:
        ctx.send_internal(
            admission.ADMISSION_SUFFIX,
            key=admission.tenant_key(tenant),
            record={**record, "tenant": tenant},
        )

    def _admission(self, ctx: Context, record: dict[str, Any]) -> None:
        """Stage 2 (keyed by tenant): admit what fits; or, keyed by run, start an admitted run."""
        if record["kind"] == "admit_run":
            self._start_admitted(ctx, str(record["execution"]))
            return
        key = admission.tenant_key(str(record["tenant"]))
        state = ctx.get(admission.ADMISSION, key) or admission.new_state()
        outputs = admission.handle(state, record)
        ctx.put(admission.ADMISSION, key, state)
        for out in outputs:
            if isinstance(out, admission.AdmitRun):
                ctx.send_internal(
                    admission.ADMISSION_SUFFIX,
                    key=out.execution,
                    record={"kind": "admit_run", "execution": out.execution},
                )
            else:
                ctx.send_internal(WORK_SUFFIX, key=out.execution, record=out.item)
                self.stats["dispatched"] += 1

    def _start_admitted(self, ctx: Context, execution: str) -> None:
        state = ctx.get(RUNS, execution)
        if state is None or state.get("ended") or "pending_start" not in state:
            return  # ended while it waited (cancelled), or admitted twice
        start = state.pop("pending_start")
        at = None if start["at"] is None else datetime.fromisoformat(start["at"])
        fork = start["fork"]
        # It goes on from its parent's checkpoint when it is a fork.
        actions = tracker.start(state) if fork is None else tracker.forked(state, fork, at=at)
        cause = {"event_id": start["cause"], "occurred_at": at}
        for action in actions:
            self._perform(ctx, execution, state, cause, action)
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
            approvals={
                step.id: step.approval.model_dump(mode="json")
                for step in definition.steps
                if step.approval is not None
            },
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
            refusal = self._command(
                "schedule_new_step",
                lambda: executions.schedule_new_step(
                    tenant, run, step_id=action.step_id, agent=action.agent, idempotency_key=key
                ),
            )
            if _already_there(refusal):
                # The worker that completed its predecessor scheduled and started it in the
                # same save (a pipelined step): it runs there, no work item for it.
                tracker.pipelined(state, action.step_id)
                self.stats["pipelined"] += 1
            elif refusal is None:
                self.stats["scheduled"] += 1
            else:
                self._refused("schedule_new_step", refusal)
        elif isinstance(action, tracker.RequestApproval):
            self._request_approval(tenant, run, cause, action)
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
                    tenant,
                    run,
                    error=action.error,
                    error_type=action.error_type,
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
        # Through the tenant's admission stage: it waits there while the tenant (or the
        # workflow) has as many steps running as its limit allows.
        self._to_run_counts(
            ctx,
            state,
            execution,
            "step_dispatch",
            step=action.step_id,
            item=item.to_record(),
        )

    def _refused(self, name: str, exc: DomainError) -> None:
        self.stats["refused"] += 1
        log.info("orchestrator.command_refused", command=name, error=str(exc))

    def _request_approval(
        self, tenant: str, run: UUID, cause: str, action: tracker.RequestApproval
    ) -> None:
        """Gate a step its definition makes wait for a human (its deadline: the processor's)."""
        key = str(derived_id(ORCHESTRATOR_APP, cause, "approval", action.step_id))
        self._command(
            "request_human_approval",
            lambda: self._apps.executions.request_human_approval(
                tenant,
                run,
                step_id=action.step_id,
                deadline=datetime.fromisoformat(action.deadline),
                default_action=action.default_action,
                prompt=action.prompt,
                approvers=list(action.approvers) or None,
                approver_role=action.approver_role,
                escalation=None if action.escalation is None else dict(action.escalation),
                # "now" of the scheduling event: a late (replayed) request is still accepted,
                # and the approvals processor applies an overdue default at once.
                now=datetime.fromisoformat(action.at),
                idempotency_key=key,
            ),
        )
        self.stats["approvals"] = self.stats.get("approvals", 0) + 1

    def _command(self, name: str, apply: Callable[[], CommandResult]) -> DomainError | None:
        """Apply a command; refusals (the run moved on meanwhile) are logged and returned."""
        for attempt in range(_CONFLICT_RETRIES):
            try:
                apply()
                return None
            except ConflictError:
                # Another writer (a worker, the command worker) got there first: reload, retry.
                time.sleep(0.02 * (attempt + 1))
            except IdempotencyKeyReusedError:
                # Our key, recorded by an older orchestrator's schedule_step: it was ours.
                return None
            except DomainError as exc:
                if name != "schedule_new_step":  # its refusals are read by the caller
                    self._refused(name, exc)
                return exc
        # A PersistenceError makes the runtime retry the event (with the same idempotency keys).
        raise PersistenceError(f"{name} kept conflicting with other writers; retrying the event")


def _already_there(refusal: DomainError | None) -> bool:
    """Whether ``schedule_new_step`` was refused because the run already has the step."""
    reason = getattr(refusal, "reason", None)
    return isinstance(refusal, InvalidCommandError) and reason in _STEP_THERE


_STEP_THERE = frozenset({"step_scheduled", "step_running", "step_completed", "step_failed"})


def _execution_of(event: dict[str, Any]) -> str | None:
    if event["event_type"] in ("RecoveryPlanned", "FailureDetected"):
        execution = event["payload"].get("execution_id")
        return None if execution is None else str(execution)
    return str(event["aggregate_id"])


def _agents(definition: WorkflowDefinition) -> dict[str, str | None]:
    return {step.id: step.agent for step in definition.steps}
