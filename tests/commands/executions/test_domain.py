"""Execution aggregate rules beyond the state table: steps, checkpoints, rollback, approvals."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest

from omium.commands.errors import InvalidCommandError
from omium.commands.executions import (
    INLINE_STATE_MAX_BYTES,
    ApprovalStatus,
    Execution,
    ExecutionState,
    StepStatus,
)
from tests.commands.executions.builders import BLOB, CHECKSUM, NOW, checkpoint, started


def state_of(execution: Execution) -> ExecutionState:
    """The run's state read afresh (mypy keeps ``execution.state`` narrowed across commands)."""
    return execution.state


def reason_of(call: Any) -> str:
    with pytest.raises(InvalidCommandError) as refused:
        call()
    return refused.value.reason


def test_attempts_are_counted_per_step_across_retries() -> None:
    execution = started()
    execution.schedule_step("fetch")
    execution.schedule_step("other")
    for _ in range(2):
        execution.start_step("fetch")
        execution.fail_step("fetch", error="HTTP 503", error_type="Transient")
        execution.schedule_step("fetch")
    execution.start_step("fetch")
    execution.complete_step("fetch", output={"rows": 3})

    fetch, other = execution.steps["fetch"], execution.steps["other"]
    assert (fetch.status, fetch.attempts, fetch.output) == (StepStatus.COMPLETED, 3, {"rows": 3})
    assert (other.status, other.attempts) == (StepStatus.SCHEDULED, 0)
    failed = [e for e in execution.pending_events if type(e).__name__ == "StepFailed"]
    assert [e.attempt for e in failed] == [1, 2]  # type: ignore[attr-defined]
    assert failed[0].error_type == "Transient"  # type: ignore[attr-defined]


def test_step_commands_check_the_step() -> None:
    execution = started()
    execution.schedule_step("a")
    execution.schedule_step("b")
    execution.start_step("b")

    assert reason_of(lambda: execution.schedule_step("a")) == "step_scheduled"
    assert reason_of(lambda: execution.start_step("ghost")) == "unknown_step"
    assert reason_of(lambda: execution.complete_step("a")) == "step_not_running"
    execution.start_step("a")
    assert reason_of(lambda: execution.schedule_step("a")) == "step_running"
    assert reason_of(lambda: execution.start_step("a")) == "step_not_scheduled"
    assert reason_of(lambda: execution.fail_step("a", error=" ")) == "invalid_error"
    assert reason_of(lambda: execution.complete_step("a", output={"x": {1}})) == "not_json"
    execution.complete_step("a")
    assert reason_of(lambda: execution.schedule_step("a")) == "step_completed"
    assert reason_of(lambda: execution.schedule_step("")) == "invalid_step_id"


def test_a_run_cannot_complete_while_a_step_is_running() -> None:
    execution = started()
    execution.schedule_step("a")
    execution.start_step("a")

    with pytest.raises(InvalidCommandError) as refused:
        execution.complete()

    assert refused.value.reason == "steps_running"
    assert refused.value.details == {"steps": ["a"]}


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"checksum": "ABC"}, "invalid_checksum"),
        ({"checksum": hashlib.sha256(b"other").hexdigest()}, "checksum_mismatch"),
        ({"size": len(BLOB) + 1}, "size_mismatch"),
        ({"size": -1}, "invalid_size"),
        ({"position": "during"}, "invalid_position"),
        ({"storage": "disk"}, "invalid_storage"),
        ({"inline_state": None}, "inline_state_required"),
        ({"object_key": "s3://x"}, "inline_state_required"),
        ({"storage": "object", "inline_state": None}, "object_key_required"),
        ({"step_id": "ghost"}, "unknown_step"),
        ({"checkpoint_id": "cp"}, "duplicate_checkpoint"),
    ],
)
def test_checkpoints_are_checked_and_fail_closed(arguments: dict[str, Any], reason: str) -> None:
    execution = started()
    execution.schedule_step("a")
    checkpoint(execution, "cp", "a")
    valid: dict[str, Any] = {
        "checkpoint_id": "cp-new",
        "step_id": "a",
        "position": "after",
        "checksum": CHECKSUM,
        "size": len(BLOB),
        "storage": "inline",
        "inline_state": BLOB,
    }
    valid.update(arguments)
    checkpoint_id = valid.pop("checkpoint_id")

    assert reason_of(lambda: execution.create_checkpoint(checkpoint_id, **valid)) == reason


def test_large_state_goes_to_object_storage() -> None:
    execution = started()
    execution.schedule_step("a")
    big = b"x" * (INLINE_STATE_MAX_BYTES + 1)
    digest = hashlib.sha256(big).hexdigest()

    assert (
        reason_of(
            lambda: execution.create_checkpoint(
                "big",
                step_id="a",
                position="after",
                checksum=digest,
                size=len(big),
                storage="inline",
                inline_state=big,
            )
        )
        == "inline_state_too_large"
    )
    execution.create_checkpoint(
        "big",
        step_id="a",
        position="after",
        checksum=digest,
        size=len(big),
        storage="object",
        object_key=f"checkpoints/{digest}",
    )
    assert execution.checkpoints["big"].object_key == f"checkpoints/{digest}"


def test_rollback_restores_the_steps_as_they_were_at_the_checkpoint() -> None:
    execution = started()
    execution.schedule_step("plan")
    execution.start_step("plan")
    execution.complete_step("plan", output={"plan": 1})
    execution.schedule_step("draft")
    checkpoint(execution, "before-draft", "draft")
    execution.start_step("draft")
    execution.complete_step("draft", output={"text": "bad"})
    execution.schedule_step("review")
    execution.start_step("review")

    execution.roll_back("before-draft", reason="hallucination")

    assert {s: r.status for s, r in execution.steps.items()} == {
        "plan": StepStatus.COMPLETED,
        "draft": StepStatus.SCHEDULED,
    }
    assert execution.steps["draft"].attempts == 1  # attempts are history: never reset
    assert execution.rollbacks == 1
    execution.start_step("draft")
    assert execution.steps["draft"].attempts == 2
    assert reason_of(lambda: execution.roll_back("nope")) == "unknown_checkpoint"


def test_a_step_mid_flight_at_the_checkpoint_is_scheduled_again_after_rollback() -> None:
    execution = started()
    execution.schedule_step("a")
    execution.schedule_step("b")
    execution.start_step("a")
    checkpoint(execution, "cp", "b")
    execution.complete_step("a")

    execution.roll_back("cp")

    assert execution.steps["a"].status is StepStatus.SCHEDULED


def test_an_approval_gates_only_its_step() -> None:
    execution = started()
    execution.schedule_step("publish")
    execution.schedule_step("research")
    execution.request_human_approval(
        "publish",
        deadline=NOW + timedelta(hours=1),
        default_action="reject",
        prompt="Ship?",
        now=NOW,
    )

    assert execution.state is ExecutionState.WAITING_FOR_APPROVAL
    assert reason_of(lambda: execution.start_step("publish")) == "approval_pending"
    execution.start_step("research")  # another branch keeps going
    execution.complete_step("research")
    assert execution.state is ExecutionState.WAITING_FOR_APPROVAL

    execution.grant_approval("publish", decided_by="alice", comment="ok")

    assert state_of(execution) is ExecutionState.RUNNING
    execution.start_step("publish")
    approval = execution.approvals["publish"]
    assert (approval.status, approval.decided_by, approval.by_default) == (
        ApprovalStatus.GRANTED,
        "alice",
        False,
    )


def test_a_rejected_step_cannot_start_and_resolution_returns_to_pending_if_nothing_ran() -> None:
    execution = started()
    execution.schedule_step("publish")
    execution.request_human_approval(
        "publish", deadline=NOW + timedelta(hours=1), default_action="approve", now=NOW
    )

    execution.reject_approval("publish", decided_by="bob")

    assert execution.state is ExecutionState.PENDING
    assert reason_of(lambda: execution.start_step("publish")) == "approval_rejected"


@pytest.mark.parametrize(
    ("default_action", "status"),
    [("approve", ApprovalStatus.GRANTED), ("reject", ApprovalStatus.REJECTED)],
)
def test_the_default_action_applies_only_after_the_deadline(
    default_action: str, status: ApprovalStatus
) -> None:
    execution = started()
    execution.schedule_step("a")
    deadline = NOW + timedelta(minutes=30)
    execution.request_human_approval("a", deadline=deadline, default_action=default_action, now=NOW)

    assert (
        reason_of(
            lambda: execution.apply_approval_default("a", now=deadline - timedelta(seconds=1))
        )
        == "deadline_not_reached"
    )
    execution.apply_approval_default("a", now=deadline)

    approval = execution.approvals["a"]
    assert (approval.status, approval.by_default, approval.decided_by) == (
        status,
        True,
        "system:deadline",
    )


def test_approval_requests_are_checked() -> None:
    execution = started()
    execution.schedule_step("a")
    later = NOW + timedelta(hours=1)

    assert (
        reason_of(
            lambda: execution.request_human_approval(
                "a", deadline=NOW, default_action="approve", now=NOW
            )
        )
        == "invalid_deadline"
    )
    assert (
        reason_of(
            lambda: execution.request_human_approval(
                "a", deadline=later.replace(tzinfo=None), default_action="approve", now=NOW
            )
        )
        == "invalid_deadline"
    )
    assert (
        reason_of(
            lambda: execution.request_human_approval(
                "a", deadline=later, default_action="maybe", now=NOW
            )
        )
        == "invalid_default_action"
    )
    execution.request_human_approval("a", deadline=later, default_action="approve", now=NOW)
    assert (
        reason_of(
            lambda: execution.request_human_approval(
                "a", deadline=later, default_action="approve", now=NOW
            )
        )
        == "approval_pending"
    )
    assert (
        reason_of(lambda: execution.grant_approval("ghost", decided_by="x"))
        == "no_pending_approval"
    )
    assert reason_of(lambda: execution.grant_approval("a", decided_by="")) == "invalid_decided_by"


def test_start_checks_the_workflow_version_and_input() -> None:
    from uuid import uuid4

    from omium.commands.executions import Execution

    for version in (0, "1", True):
        assert (
            reason_of(
                lambda v=version: Execution.start(
                    tenant_id="t", workflow_id=uuid4(), workflow_version=v
                )
            )
            == "invalid_workflow_version"
        )
    assert (
        reason_of(
            lambda: Execution.start(
                tenant_id="t",
                workflow_id=uuid4(),
                workflow_version=1,
                input=[1],  # type: ignore[arg-type]
            )
        )
        == "not_json"
    )
