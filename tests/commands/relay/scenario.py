"""A tenant's history that records every domain event type at least once, for relay tests.

``record_every_event`` drives the command applications through their public handlers only, so
what the relay reads is exactly what the gateway would have stored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from omium.commands import CommandApplications
from omium.commands.executions import Execution

REGO = 'package omium.budget\n\ndeny contains msg if {\n  input.cost > 2\n  msg := "over"\n}\n'


@dataclass
class Recorded:
    """What the scenario stored: event types per aggregate, in order."""

    tenant: str
    events: dict[UUID, list[str]] = field(default_factory=dict)
    ids: dict[str, UUID] = field(default_factory=dict)

    def add(self, name: str, aggregate_id: UUID, *event_types: str) -> None:
        """Record that ``aggregate_id`` (known as ``name``) stored ``event_types`` next."""
        self.ids.setdefault(name, aggregate_id)
        self.events.setdefault(aggregate_id, []).extend(event_types)

    @property
    def count(self) -> int:
        """Number of stored events."""
        return sum(len(types) for types in self.events.values())


def record_every_event(apps: CommandApplications, tenant: str) -> Recorded:
    """Run commands that store every event type of the four aggregates.

    Returns:
        The event types stored per aggregate, in version order.
    """
    rec = Recorded(tenant)
    _workflow_and_policy(apps, rec)
    _run_with_rollback(apps, rec)
    _runs_that_end_otherwise(apps, rec)
    _run_with_pruned_checkpoints(apps, rec)
    _run_with_suggestions(apps, rec)
    _consensus_rounds(apps, rec)
    return rec


def _workflow_and_policy(apps: CommandApplications, rec: Recorded) -> None:
    t = rec.tenant
    definition: dict[str, Any] = {
        "description": "research then write",
        "tags": ["demo"],
        "steps": [{"id": "a", "agent": "agents.a:run"}, {"id": "b", "agent": "agents.b:run"}],
    }
    wid = apps.workflows.register_workflow(t, name="flow", definition=definition).aggregate_id
    apps.workflows.publish_workflow_version(t, wid, definition={"steps": definition["steps"][:1]})
    rec.add("workflow", wid, "WorkflowRegistered", "WorkflowVersionPublished")
    limits = apps.workflows.set_concurrency_limits(t, max_running_executions=2).aggregate_id
    apps.workflows.set_concurrency_limits(
        t, max_concurrent_steps=3, workflows={str(wid): {"max_running_executions": 1}}
    )
    rec.add("limits", limits, "ConcurrencyLimitsSet", "ConcurrencyLimitsSet")
    pid = apps.policies.publish_policy(t, name="budget.max_cost", module=REGO, mode="deny")
    apps.policies.publish_policy(
        t, name="budget.max_cost", module=REGO, mode="warn", description="softer"
    )
    rec.add("policy", pid.aggregate_id, "PolicyPublished", "PolicyPublished")


def _run_with_rollback(apps: CommandApplications, rec: Recorded) -> None:
    t, ex = rec.tenant, apps.executions
    run = ex.start_execution(
        t, workflow_id=rec.ids["workflow"], workflow_version=1, input={"topic": "batteries"}
    ).aggregate_id
    state = b'{"draft": 1}'
    ex.schedule_step(t, run, step_id="a", agent="agents.a:run")
    ex.start_step(t, run, step_id="a")
    ex.create_checkpoint(
        t,
        run,
        step_id="a",
        position="after",
        checkpoint_id="cp-a",
        checksum=hashlib.sha256(state).hexdigest(),
        size=len(state),
        storage="inline",
        inline_state=state,
    )
    ex.complete_step(t, run, step_id="a", output={"text": "done"})
    ex.schedule_step(t, run, step_id="b")
    ex.request_human_approval(
        t,
        run,
        step_id="b",
        default_action="reject",
        deadline=datetime.now(UTC) + timedelta(hours=1),
        prompt="ok?",
    )
    ex.grant_approval(t, run, step_id="b", decided_by="bob", comment="fine")
    ex.start_step(t, run, step_id="b")
    ex.fail_step(t, run, step_id="b", error="boom", error_type="ValueError")
    ex.roll_back_to_checkpoint(t, run, checkpoint_id="cp-a", reason="retry from a")
    ex.complete_execution(t, run, output={"report": "r"})
    rec.add(
        "run",
        run,
        "ExecutionStarted",
        "StepScheduled",
        "StepStarted",
        "CheckpointCreated",
        "StepCompleted",
        "StepScheduled",
        "HumanApprovalRequested",
        "HumanApprovalGranted",
        "StepStarted",
        "StepFailed",
        "ExecutionRolledBack",
        "ExecutionCompleted",
    )
    # A fork of the finished run from its checkpoint, with an edited state: ExecutionStarted v2.
    fork = ex.fork_execution(t, run, checkpoint_id="cp-a", state=b'{"draft": 2}')
    rec.add("fork", fork.aggregate_id, "ExecutionStarted", "CheckpointCreated")


def _run_with_pruned_checkpoints(apps: CommandApplications, rec: Recorded) -> None:
    t, ex = rec.tenant, apps.executions
    run = ex.start_execution(t, workflow_id=rec.ids["workflow"], workflow_version=1).aggregate_id
    ex.schedule_step(t, run, step_id="a")
    ex.start_step(t, run, step_id="a")
    for n in range(3):
        state = b'{"n": %d}' % n
        ex.create_checkpoint(
            t,
            run,
            step_id="a",
            position="after",
            checkpoint_id=f"cp-{n}",
            checksum=hashlib.sha256(state).hexdigest(),
            size=len(state),
            storage="inline",
            inline_state=state,
        )
    ex.prune_checkpoints(t, run, keep_last=1)
    rec.add(
        "pruned",
        run,
        "ExecutionStarted",
        "StepScheduled",
        "StepStarted",
        "CheckpointCreated",
        "CheckpointCreated",
        "CheckpointCreated",
        "CheckpointsPruned",
    )


def _runs_that_end_otherwise(apps: CommandApplications, rec: Recorded) -> None:
    t, ex, wid = rec.tenant, apps.executions, rec.ids["workflow"]
    rejected = ex.start_execution(t, workflow_id=wid, workflow_version=1).aggregate_id
    ex.schedule_step(t, rejected, step_id="a")
    deadline = datetime.now(UTC) + timedelta(hours=1)
    ex.request_human_approval(
        t,
        rejected,
        step_id="a",
        default_action="escalate",
        deadline=deadline,
        escalation={"approvers": ["carol"], "timeout_s": 3600, "default_action": "approve"},
    )
    # Nobody decided by the deadline: carol decides from then on.
    ex.apply_approval_default(t, rejected, step_id="a", now=deadline + timedelta(seconds=1))
    ex.reject_approval(t, rejected, step_id="a", decided_by="carol", comment="no")
    ex.fail_execution(t, rejected, error="rejected", error_type="ApprovalRejected")
    rec.add(
        "rejected",
        rejected,
        "ExecutionStarted",
        "StepScheduled",
        "HumanApprovalRequested",
        "HumanApprovalEscalated",
        "HumanApprovalRejected",
        "ExecutionFailed",
    )
    halted = ex.start_execution(t, workflow_id=wid, workflow_version=2).aggregate_id
    ex.halt_execution(t, halted, reason="budget", policy_id="budget.max_cost")
    rec.add("halted", halted, "ExecutionStarted", "ExecutionHalted")
    cancelled = ex.start_execution(t, workflow_id=wid, workflow_version=1).aggregate_id
    ex.cancel_execution(t, cancelled, reason="wrong topic", requested_by="alice")
    rec.add("cancelled", cancelled, "ExecutionStarted", "ExecutionCancelled")


def _run_with_suggestions(apps: CommandApplications, rec: Recorded) -> None:
    t, ex, wid = rec.tenant, apps.executions, rec.ids["workflow"]
    run = ex.start_execution(t, workflow_id=wid, workflow_version=1).aggregate_id
    ex.schedule_step(t, run, step_id="a")
    ex.start_step(t, run, step_id="a")
    ex.fail_step(t, run, step_id="a", error="tool crashed", error_type="exception")
    diagnosis = {
        "probable_cause": "the search tool is down",
        "evidence": [{"source": "error", "quote": "tool crashed", "verified": True}],
        "similar_failures": [
            {"description": "3 earlier runs", "fixed_by": "fallback:b", "success_rate": 1.0}
        ],
        "confidence": 0.8,
    }
    usage = {"provider": "scripted", "model": "m", "tokens_in": 90, "tokens_out": 40}
    ex.suggest_fix(
        t,
        run,
        suggestion_id="s1",
        diagnosis=diagnosis,
        fix={"action": "retry", "step_id": "a", "input": {"query": "shorter"}},
        requested_by="streams.diagnosis",
        step_id="a",
        failure_id="f-1",
        usage=usage,
    )
    ex.reject_suggestion(t, run, suggestion_id="s1", decided_by="dan", comment="not that")
    ex.suggest_fix(
        t,
        run,
        suggestion_id="s2",
        diagnosis=diagnosis,
        fix={"action": "fallback", "step_id": "a", "agent": "b"},
        requested_by="dan",
        step_id="a",
    )
    ex.approve_suggestion(
        t,
        run,
        suggestion_id="s2",
        decided_by="dan",
        fix={"action": "fallback", "step_id": "a", "agent": "c", "reason": "c is cheaper"},
    )
    rec.add(
        "suggested",
        run,
        "ExecutionStarted",
        "StepScheduled",
        "StepStarted",
        "StepFailed",
        "RecoverySuggested",
        "RecoverySuggestionRejected",
        "RecoverySuggested",
        "RecoverySuggestionApproved",
        "StepScheduled",
    )


def _consensus_rounds(apps: CommandApplications, rec: Recorded) -> None:
    t, co = rec.tenant, apps.consensus
    deadline = datetime.now(UTC) + timedelta(minutes=5)
    reached = co.open_round(
        t,
        participants=["p1", "p2", "p3"],
        rule="weighted",
        weights={"p1": 1, "p2": 1, "p3": 2},
        threshold=0.5,
        deadline=deadline,
        subject="title?",
        execution_id=rec.ids["run"],
    ).aggregate_id
    co.cast_vote(t, reached, participant="p3", choice="B", rationale="short")
    co.cast_vote(t, reached, participant="p1", choice="B")
    co.decide_round(t, reached)
    rec.add("reached", reached, "ConsensusRoundOpened", "VoteCast", "VoteCast", "ConsensusReached")
    split = co.open_round(
        t, participants=["p1", "p2"], rule="unanimous", deadline=deadline
    ).aggregate_id
    co.cast_vote(t, split, participant="p1", choice="A")
    co.cast_vote(t, split, participant="p2", choice="B")
    co.decide_round(t, split)
    rec.add("split", split, "ConsensusRoundOpened", "VoteCast", "VoteCast", "ConsensusFailed")


def store_burst(
    apps: CommandApplications, tenant: str, *, aggregates: int, steps: int
) -> dict[UUID, int]:
    """Store ``aggregates`` runs of ``1 + 3 * steps`` events each, one transaction per run.

    Goes through the ``Execution`` aggregate and the application's ``save`` rather than one
    command per event, so thousands of events are stored in seconds; the stored events are the
    same as the handlers would store.

    Returns:
        The number of events stored per execution id.
    """
    counts: dict[UUID, int] = {}
    for _ in range(aggregates):
        run = Execution.start(
            tenant_id=tenant, workflow_id=uuid4(), workflow_version=1, input={"burst": True}
        )
        for index in range(steps):
            step_id = f"s{index}"
            run.schedule_step(step_id, agent="agents.burst:run")
            run.start_step(step_id)
            run.complete_step(step_id, output={"n": index})
        apps.executions.save(run)
        counts[run.id] = run.version
    return counts
