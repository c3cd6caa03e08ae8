"""The run tracker's decisions, event by event (no Kafka, no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from omium.worker import _tracker as tracker
from omium.worker._tracker import CompleteRun, Dispatch, FailRun, Schedule

DIAMOND = {"fetch": [], "left": ["fetch"], "right": ["fetch"], "merge": ["left", "right"]}


def event(kind: str, **payload: Any) -> dict[str, Any]:
    return {"event_type": kind, "payload": payload, "occurred_at": datetime(2025, 1, 1, tzinfo=UTC)}


def run(needs: dict[str, list[str]] = DIAMOND) -> dict[str, Any]:
    state = tracker.new_run(
        tenant_id="acme",
        workflow_id="w",
        workflow_version=1,
        needs=needs,
        agents={step: f"agent_{step}" for step in needs},
    )
    stored: dict[str, Any] = json.loads(json.dumps(state, sort_keys=True))  # as a table stores it
    return stored


def complete(state: dict[str, Any], step: str, output: Any = None) -> list[tracker.Action]:
    tracker.apply(state, event("StepScheduled", step_id=step))
    tracker.apply(state, event("StepStarted", step_id=step, attempt=1))
    return tracker.apply(
        state, event("StepCompleted", step_id=step, output_json=json.dumps(output or {}))
    )


def test_a_diamond_runs_in_dependency_order_and_completes_with_its_final_output() -> None:
    state = run()
    assert tracker.start(state) == [Schedule("fetch", "agent_fetch")]
    assert tracker.apply(state, event("StepScheduled", step_id="fetch", agent=None)) == [
        Dispatch("fetch", "scheduled")
    ]
    tracker.apply(state, event("StepStarted", step_id="fetch", attempt=1))
    after_fetch = tracker.apply(state, event("StepCompleted", step_id="fetch", output_json="{}"))
    assert after_fetch == [Schedule("left", "agent_left"), Schedule("right", "agent_right")]
    assert complete(state, "left") == []  # merge still waits for right
    assert complete(state, "right") == [Schedule("merge", "agent_merge")]
    assert complete(state, "merge", {"answer": 42}) == [CompleteRun({"merge": {"answer": 42}})]


def test_a_failed_step_waits_for_recovery_and_is_not_scheduled_again() -> None:
    state = run({"a": [], "b": ["a"]})
    tracker.start(state)
    tracker.apply(state, event("StepScheduled", step_id="a"))
    tracker.apply(state, event("StepStarted", step_id="a", attempt=1))
    assert tracker.apply(state, event("StepFailed", step_id="a", attempt=1)) == []
    assert tracker.apply(state, event("StepScheduled", step_id="a", agent="backup")) == [
        Dispatch("a", "scheduled", agent="backup")
    ]


def test_a_rollback_to_a_before_checkpoint_dispatches_the_step_from_that_checkpoint() -> None:
    state = run({"research": [], "draft": ["research"], "review": ["draft"]})
    complete(state, "research")
    tracker.apply(state, event("StepScheduled", step_id="draft"))
    tracker.apply(state, event("StepStarted", step_id="draft", attempt=1))
    tracker.apply(
        state, event("CheckpointCreated", checkpoint_id="cp1", step_id="draft", position="before")
    )
    tracker.apply(state, event("StepFailed", step_id="draft", attempt=1))
    actions = tracker.apply(
        state, event("ExecutionRolledBack", checkpoint_id="cp1", resume_step_id="draft")
    )
    assert actions == [Dispatch("draft", "rollback", restore_checkpoint_id="cp1")]
    assert state["steps"] == {"research": "completed", "draft": "scheduled"}


def test_a_rollback_to_an_after_checkpoint_schedules_what_follows_it() -> None:
    state = run({"research": [], "draft": ["research"]})
    complete(state, "research")
    tracker.apply(
        state, event("CheckpointCreated", checkpoint_id="cp0", step_id="research", position="after")
    )
    tracker.apply(state, event("StepScheduled", step_id="draft"))
    tracker.apply(state, event("StepStarted", step_id="draft", attempt=1))
    tracker.apply(state, event("StepFailed", step_id="draft", attempt=1))
    actions = tracker.apply(state, event("ExecutionRolledBack", checkpoint_id="cp0"))
    assert actions == [Schedule("draft", "agent_draft")]


def test_recovery_backoff_and_fallback_model_ride_on_the_next_dispatch() -> None:
    state = run({"a": []})
    planned = event(
        "RecoveryPlanned", step_id="a", plan="retry", backoff_ms=1500, fallback_model="gpt-4o"
    )
    assert tracker.apply(state, planned) == []
    [dispatch] = tracker.apply(state, event("StepScheduled", step_id="a"))
    assert isinstance(dispatch, Dispatch)
    assert dispatch.model == "gpt-4o"
    assert dispatch.not_before == "2025-01-01T00:00:01.500000+00:00"


def test_approvals_redispatch_on_grant_and_fail_the_run_on_rejection() -> None:
    state = run({"a": []})
    tracker.apply(state, event("StepScheduled", step_id="a"))
    granted = tracker.apply(state, event("HumanApprovalGranted", step_id="a", decided_by="bob"))
    assert granted == [Dispatch("a", "approval_granted", agent="agent_a")]
    rejected = tracker.apply(
        state, event("HumanApprovalRejected", step_id="a", decided_by="bob", reason="wrong")
    )
    assert rejected == [FailRun("step 'a' was rejected by bob: wrong", "approval_rejected")]


def test_nothing_happens_after_the_run_ended() -> None:
    state = run({"a": []})
    tracker.apply(state, event("ExecutionHalted", reason="policy"))
    assert tracker.apply(state, event("StepScheduled", step_id="a")) == []
    assert state["ended"]


def fork_record(position: str, step: str, steps: dict[str, str]) -> dict[str, Any]:
    return {
        "checkpoint_id": "parent-cp",
        "checkpoint_step_id": step,
        "checkpoint_position": position,
        "parent_workflow_version": 1,
        "state_edited": False,
        "start_checkpoint_id": "fork-cp",
        "steps": [
            {
                "step_id": sid,
                "status": status,
                "agent": None,
                "output_json": json.dumps({"from": sid}) if status == "completed" else None,
            }
            for sid, status in steps.items()
        ],
    }


def test_a_fork_dispatches_what_runs_again_and_schedules_what_became_ready() -> None:
    # Forked before left, with right still running at the checkpoint: both run again, left from
    # the fork's first checkpoint (its own before state), right from its needs' results.
    state = run()
    record = fork_record(
        "before", "left", {"fetch": "completed", "left": "scheduled", "right": "scheduled"}
    )
    assert tracker.forked(state, record) == [
        Dispatch("left", "fork", agent="agent_left", restore_checkpoint_id="fork-cp"),
        Dispatch("right", "fork", agent="agent_right"),
    ]
    tracker.apply(state, event("StepStarted", step_id="left", attempt=1))
    assert tracker.apply(state, event("StepCompleted", step_id="left", output_json="{}")) == []
    assert complete(state, "right") == [Schedule("merge", "agent_merge")]


def test_a_fork_after_a_step_schedules_the_next_and_one_after_the_last_completes() -> None:
    state = run()
    after_fetch = fork_record("after", "fetch", {"fetch": "completed"})
    assert tracker.forked(state, after_fetch) == [
        Schedule("left", "agent_left"),
        Schedule("right", "agent_right"),
    ]
    done = run()
    everything = dict.fromkeys(DIAMOND, "completed")
    assert tracker.forked(done, fork_record("after", "merge", everything)) == [
        CompleteRun({"merge": {"from": "merge"}})
    ]


def test_a_step_that_requires_an_approval_asks_for_it_once_and_runs_when_granted() -> None:
    spec = {"timeout_s": 60, "on_timeout": "approve", "approvers": ["bob"], "prompt": "Go?"}
    state = tracker.new_run(
        tenant_id="acme",
        workflow_id="w",
        workflow_version=1,
        needs={"a": [], "b": ["a"]},
        agents={"a": "x", "b": "y"},
        approvals={"b": spec},
    )
    state = json.loads(json.dumps(state, sort_keys=True))
    complete(state, "a")
    at = datetime(2025, 1, 1, tzinfo=UTC)
    assert tracker.apply(state, event("StepScheduled", step_id="b")) == [
        tracker.RequestApproval(
            "b",
            at=at.isoformat(),
            deadline="2025-01-01T00:01:00+00:00",
            default_action="approve",
            approvers=("bob",),
            prompt="Go?",
        )
    ]
    granted = event("HumanApprovalGranted", step_id="b", decided_by="bob")
    assert tracker.apply(state, granted) == [Dispatch("b", "approval_granted", agent="y")]
    # A retry of the approved step is dispatched at once.
    tracker.apply(state, event("StepStarted", step_id="b", attempt=1))
    tracker.apply(state, event("StepFailed", step_id="b", attempt=1))
    assert tracker.apply(state, event("StepScheduled", step_id="b")) == [Dispatch("b", "scheduled")]
