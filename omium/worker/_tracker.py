"""The run tracker: a run's step graph and step statuses, and what to do after each event.

Pure: :func:`apply` takes the state kept for one run (a JSON-compatible dict) and one decoded
event, updates the state and returns the actions that follow (schedule these steps, dispatch that
one to a worker, complete the run). The orchestrator performs the actions; keeping the decisions
here makes them testable without Kafka or a database.

The step statuses mirror the ``Execution`` aggregate: the tracker applies the same transitions,
including rollbacks, which restore the statuses recorded with the checkpoint (a step that was
running at the checkpoint is scheduled again).

A worker that completes a step may go on to the next one itself, in the same save (see
:mod:`omium.worker._pipeline`): the run's ``StepScheduled`` and ``StepStarted`` of that step then
follow its predecessor's ``StepCompleted`` without the orchestrator asking. The orchestrator
learns it when its own ``schedule_new_step`` for the step is refused because the step is already
there, and marks the step :data:`PIPELINED` (:func:`pipelined`): its ``StepScheduled`` then
dispatches nothing, since the worker that scheduled it is already running it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from omium.sdk.workflow import ready_steps

REQUESTED = "requested"  # asked for with schedule_step; not yet seen as StepScheduled
PIPELINED = "pipelined"  # the worker that completed the step before went on to it itself
SCHEDULED = "scheduled"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"

ENDING_EVENTS = frozenset(
    {"ExecutionCompleted", "ExecutionFailed", "ExecutionHalted", "ExecutionCancelled"}
)
"""Events after which a run never changes again."""


@dataclass(frozen=True)
class Schedule:
    """Schedule a step that became ready (``executions.schedule_step``)."""

    step_id: str
    agent: str | None


@dataclass(frozen=True)
class Dispatch:
    """Hand a scheduled step to the execution workers."""

    step_id: str
    reason: str
    agent: str | None = None
    model: str | None = None
    restore_checkpoint_id: str | None = None
    not_before: str | None = None


@dataclass(frozen=True)
class RequestApproval:
    """A step that requires a human approval became due: ask for it before it runs.

    Times are ISO-8601 text: ``at`` is when the step was scheduled (the request's "now"), and
    ``deadline`` that plus the approval's ``timeout_s``, so a replayed event asks the same.
    """

    step_id: str
    at: str
    deadline: str
    default_action: str
    approvers: tuple[str, ...] = ()
    approver_role: str | None = None
    prompt: str | None = None
    escalation: Mapping[str, Any] | None = None
    """With ``default_action`` ``escalate``: who decides next (the write side's shape)."""


@dataclass(frozen=True)
class CompleteRun:
    """Every step completed: complete the run with the outputs of its final steps."""

    output: dict[str, Any]


@dataclass(frozen=True)
class FailRun:
    """The run cannot go on (a gated step was rejected)."""

    error: str
    error_type: str


Action = Schedule | Dispatch | RequestApproval | CompleteRun | FailRun


def new_run(
    *,
    tenant_id: str,
    workflow_id: str,
    workflow_version: int,
    needs: Mapping[str, Sequence[str]],
    agents: Mapping[str, str | None],
    approvals: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The state of a run that just started.

    Args:
        tenant_id: The run's tenant.
        workflow_id: Its workflow.
        workflow_version: The definition version.
        needs: Step id -> steps it needs (the resolved graph).
        agents: Step id -> the agent that runs it (``None`` for consensus steps).
        approvals: Step id -> its ``approval`` settings, for the steps that require one.
    """
    return {
        "tenant": tenant_id,
        "workflow_id": workflow_id,
        "version": workflow_version,
        # State tables store JSON with sorted keys: keep the declaration order apart.
        "order": list(needs),
        "needs": {step: list(deps) for step, deps in needs.items()},
        "agents": dict(agents),
        "steps": {},
        "snapshots": {},
        "outputs": {},
        "plans": {},
        "ended": False,
        "approvals": {step: dict(spec) for step, spec in (approvals or {}).items()},
        "approved": [],
    }


def start(state: dict[str, Any]) -> list[Action]:
    """The actions that start a run: schedule every step that needs nothing."""
    return _schedule_ready(state)


def forked(
    state: dict[str, Any], fork: Mapping[str, Any], *, at: datetime | None = None
) -> list[Action]:
    """The actions that start a fork: it goes on from its parent's checkpoint.

    ``fork`` is the ``ExecutionStarted`` payload's ``fork`` record: the steps as the fork has
    them (completed ones stay completed, the others are scheduled and run again), and its first
    checkpoint, which holds the state they start from. A scheduled step is dispatched at once
    (the write side has it scheduled already, as after a rollback), from that checkpoint when it
    is the step's *before* checkpoint; then whatever became ready is scheduled, or the run is
    completed when nothing is left to do.
    """
    restart = fork.get("start_checkpoint_id")
    resume_here = fork.get("checkpoint_position") == "before"
    final = _final_steps(state)
    actions: list[Action] = []
    for step in fork.get("steps") or []:
        step_id = step["step_id"]
        if step["status"] == COMPLETED:
            state["steps"][step_id] = COMPLETED
            if step_id in final:
                state["outputs"][step_id] = _parse_output(step.get("output_json"))
            continue
        state["steps"][step_id] = SCHEDULED
        gate = None if at is None else _gate(state, step_id, at)
        if gate is not None:
            actions.append(gate)  # a fork asks again: approvals are not carried over
            continue
        here = resume_here and fork.get("checkpoint_step_id") == step_id
        actions.append(
            Dispatch(
                step_id,
                "fork",
                agent=state["agents"].get(step_id, step.get("agent")),
                restore_checkpoint_id=restart if here else None,
            )
        )
    return actions + _advance(state)


def pipelined(state: dict[str, Any], step_id: str) -> None:
    """The orchestrator found ``step_id`` already scheduled by the worker of its predecessor.

    Called when the orchestrator's ``schedule_new_step`` for a step it asked for is refused
    because the run has the step: its ``StepScheduled`` (next in the run's events) is then not
    dispatched. Deterministic on replay: the refusal depends on the event store, not on timing.
    """
    if state["steps"].get(step_id) == REQUESTED:
        state["steps"][step_id] = PIPELINED


def apply(state: dict[str, Any], event: Mapping[str, Any]) -> list[Action]:
    """Update ``state`` with one event of the run and return the actions it calls for.

    Events the tracker does not use return no action; nothing happens once the run ended.
    """
    if state["ended"]:
        return []
    kind = event["event_type"]
    if kind in ENDING_EVENTS:
        _end(state)
        return []
    handler = _HANDLERS.get(kind)
    return [] if handler is None else handler(state, event["payload"], event)


# ---------------------------------------------------------------------------- step events


def _scheduled(
    state: dict[str, Any], p: Mapping[str, Any], event: Mapping[str, Any]
) -> list[Action]:
    step = p["step_id"]
    claimed = state["steps"].get(step) == PIPELINED
    state["steps"][step] = SCHEDULED
    plan = state["plans"].pop(step, {})
    if claimed:
        return []  # its worker scheduled and started it in one save: nothing to hand out
    occurred = event.get("occurred_at")
    gate = _gate(state, step, occurred) if isinstance(occurred, datetime) else None
    if gate is not None:
        return [gate]  # dispatched once granted (HumanApprovalGranted)
    return [
        Dispatch(
            step,
            "scheduled",
            agent=p.get("agent"),
            model=plan.get("model"),
            not_before=plan.get("not_before"),
        )
    ]


def _started(state: dict[str, Any], p: Mapping[str, Any], event: Mapping[str, Any]) -> list[Action]:
    state["steps"][p["step_id"]] = RUNNING
    return []


def _failed(state: dict[str, Any], p: Mapping[str, Any], event: Mapping[str, Any]) -> list[Action]:
    # What happens next is the recovery processor's decision (retry, rollback, escalate ...).
    state["steps"][p["step_id"]] = FAILED
    return []


def _completed(
    state: dict[str, Any], p: Mapping[str, Any], event: Mapping[str, Any]
) -> list[Action]:
    step = p["step_id"]
    state["steps"][step] = COMPLETED
    if step in _final_steps(state):
        state["outputs"][step] = _parse_output(p.get("output_json"))
    return _advance(state)


def _checkpoint(
    state: dict[str, Any], p: Mapping[str, Any], event: Mapping[str, Any]
) -> list[Action]:
    # The aggregate's snapshot holds the steps it knows: requested ones are not among them,
    # nor pipelined ones (their StepScheduled comes after this checkpoint).
    known = {
        step: status
        for step, status in state["steps"].items()
        if status not in (REQUESTED, PIPELINED)
    }
    state["snapshots"][p["checkpoint_id"]] = {
        "steps": known,
        "step": p["step_id"],
        "position": str(p["position"]),
    }
    return []


def _rolled_back(
    state: dict[str, Any], p: Mapping[str, Any], event: Mapping[str, Any]
) -> list[Action]:
    checkpoint = p["checkpoint_id"]
    snapshot = state["snapshots"].get(checkpoint)
    if snapshot is None:
        return []  # a checkpoint from before the tracker knew the run: nothing to mirror
    state["steps"] = {
        step: SCHEDULED if status == RUNNING else status
        for step, status in snapshot["steps"].items()
    }
    state["outputs"] = {
        step: out for step, out in state["outputs"].items() if state["steps"].get(step) == COMPLETED
    }
    actions: list[Action] = []
    for step, status in state["steps"].items():
        if status != SCHEDULED:
            continue
        resume_here = snapshot["step"] == step and snapshot["position"] == "before"
        actions.append(
            Dispatch(step, "rollback", restore_checkpoint_id=checkpoint if resume_here else None)
        )
    return actions + _advance(state)


def _approval_granted(
    state: dict[str, Any], p: Mapping[str, Any], event: Mapping[str, Any]
) -> list[Action]:
    step = p["step_id"]
    approved = state.setdefault("approved", [])
    if step not in approved:
        approved.append(step)  # a retry of the step does not ask again
    if state["steps"].get(step) != SCHEDULED:
        return []
    return [Dispatch(step, "approval_granted", agent=state["agents"].get(step))]


def _approval_rejected(
    state: dict[str, Any], p: Mapping[str, Any], event: Mapping[str, Any]
) -> list[Action]:
    why = f": {p['reason']}" if p.get("reason") else ""
    return [
        FailRun(
            f"step {p['step_id']!r} was rejected by {p['decided_by']}{why}",
            "approval_rejected",
        )
    ]


def _recovery_planned(
    state: dict[str, Any], p: Mapping[str, Any], event: Mapping[str, Any]
) -> list[Action]:
    # The plan's commands reach the run through the command worker; what they cannot carry
    # (the backoff before a retry, a fallback model) waits here for the step's next dispatch.
    step = p.get("step_id")
    if step is None or p["plan"] not in ("retry", "fallback"):
        return []
    plan: dict[str, Any] = {"model": p.get("fallback_model")}
    backoff = p.get("backoff_ms")
    occurred = event.get("occurred_at")
    if backoff and isinstance(occurred, datetime):
        plan["not_before"] = (occurred + timedelta(milliseconds=backoff)).isoformat()
    state["plans"][step] = plan
    return []


_HANDLERS = {
    "StepScheduled": _scheduled,
    "StepStarted": _started,
    "StepCompleted": _completed,
    "StepFailed": _failed,
    "CheckpointCreated": _checkpoint,
    "ExecutionRolledBack": _rolled_back,
    "HumanApprovalGranted": _approval_granted,
    "HumanApprovalRejected": _approval_rejected,
    "RecoveryPlanned": _recovery_planned,
}


# ---------------------------------------------------------------------------- helpers


def _advance(state: dict[str, Any]) -> list[Action]:
    """Complete the run when every step is done, else schedule what became ready."""
    steps = state["steps"]
    if all(steps.get(step) == COMPLETED for step in state["needs"]):
        return [CompleteRun(dict(state["outputs"]))]
    return _schedule_ready(state)


def _schedule_ready(state: dict[str, Any]) -> list[Action]:
    steps = state["steps"]
    completed = [step for step, status in steps.items() if status == COMPLETED]
    # Failed steps count as started: recovery, not the graph, decides when they run again.
    started = [step for step, status in steps.items() if status != COMPLETED]
    needs = {step: state["needs"][step] for step in state["order"]}
    ready = ready_steps(needs, completed, started=started)
    for step in ready:
        steps[step] = REQUESTED  # so that the next event does not ask for it again
    return [Schedule(step, state["agents"].get(step)) for step in ready]


def _gate(state: dict[str, Any], step: str, at: datetime) -> RequestApproval | None:
    """The approval a scheduled step must get before it runs, if it requires one still."""
    spec = (state.get("approvals") or {}).get(step)
    if spec is None or step in state.get("approved", []):
        return None
    deadline = at + timedelta(seconds=float(spec.get("timeout_s") or 3600.0))
    return RequestApproval(
        step,
        at=at.isoformat(),
        deadline=deadline.isoformat(),
        default_action=str(spec.get("on_timeout") or "reject"),
        approvers=tuple(spec.get("approvers") or ()),
        approver_role=spec.get("approver_role"),
        prompt=spec.get("prompt"),
        escalation=_escalation(spec.get("escalation")),
    )


def _escalation(spec: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A definition's ``approval.escalation`` in the shape the write side takes."""
    if not spec:
        return None
    return {
        "approvers": list(spec.get("approvers") or []),
        "approver_role": spec.get("approver_role"),
        "timeout_s": float(spec.get("timeout_s") or 3600.0),
        "default_action": str(spec.get("on_timeout") or "reject"),
    }


def _final_steps(state: Mapping[str, Any]) -> set[str]:
    """Steps no other step needs: their outputs are the run's output."""
    needed = {dep for deps in state["needs"].values() for dep in deps}
    return {step for step in state["needs"] if step not in needed}


def _end(state: dict[str, Any]) -> None:
    state.update(ended=True, snapshots={}, plans={}, outputs={})


def _parse_output(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
