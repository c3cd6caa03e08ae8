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
    return json.loads(json.dumps(state, sort_keys=True))  # as a state table stores it


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
    planned = event("RecoveryPlanned", step_id="a", plan="retry", backoff_ms=1500,
                    fallback_model="gpt-4o")
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
