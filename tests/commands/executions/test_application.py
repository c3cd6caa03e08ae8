"""Executions application, run on the in-memory store and on PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from omium.commands import (
    ConflictError,
    ExecutionsApplication,
    InvalidCommandError,
    InvalidTransitionError,
    NotFoundError,
)
from tests.commands.executions.builders import NOW
from tests.commands.helpers import event_names


@pytest.fixture
def executions(app_factory: Callable[..., Any]) -> ExecutionsApplication:
    return app_factory(ExecutionsApplication)  # type: ignore[no-any-return]


def blob(data: bytes) -> dict[str, Any]:
    return {
        "checksum": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "storage": "inline",
        "inline_state": data,
    }


def test_a_run_from_start_to_completion(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant, workflow_id = tenant_factory(), uuid4()
    run = executions.start_execution(
        tenant, workflow_id=workflow_id, workflow_version=2, input={"topic": "llamas"}
    ).aggregate_id

    executions.schedule_step(tenant, run, step_id="research", agent="agents:researcher")
    before = executions.create_checkpoint(
        tenant, run, step_id="research", position="before", **blob(b"{}")
    )
    executions.start_step(tenant, run, step_id="research")
    executions.fail_step(tenant, run, step_id="research", error="rate limited", retryable=True)
    executions.schedule_step(tenant, run, step_id="research")
    executions.start_step(tenant, run, step_id="research")
    executions.complete_step(tenant, run, step_id="research", output={"facts": 3})
    executions.create_checkpoint(
        tenant,
        run,
        step_id="research",
        position="after",
        checkpoint_id="cp-2",
        **blob(b'{"facts": 3}'),
    )
    executions.schedule_step(tenant, run, step_id="publish")
    executions.request_human_approval(
        tenant,
        run,
        step_id="publish",
        deadline=NOW + timedelta(hours=4),
        default_action="reject",
        prompt="Publish?",
        now=NOW,
    )
    waiting = executions.get_execution(tenant, run)
    executions.grant_approval(tenant, run, step_id="publish", decided_by="alice")
    executions.start_step(tenant, run, step_id="publish")
    executions.complete_step(tenant, run, step_id="publish")
    done = executions.complete_execution(tenant, run, output={"url": "https://x"})

    view = executions.get_execution(tenant, run)
    assert waiting.state == "waiting_for_approval"
    assert (view.state, view.version, view.outcome) == (
        "completed",
        done.version,
        {"output": {"url": "https://x"}},
    )
    assert (view.workflow_id, view.workflow_version, view.input) == (
        workflow_id,
        2,
        {"topic": "llamas"},
    )
    assert [(s.step_id, s.status, s.attempts) for s in view.steps] == [
        ("research", "completed", 2),
        ("publish", "completed", 1),
    ]
    assert [c.checkpoint_id for c in view.checkpoints] == [before.data["checkpoint_id"], "cp-2"]
    assert all(c.inline_state is None for c in view.checkpoints)
    assert view.approvals[0].decided_by == "alice"
    assert event_names(executions, run) == [
        "ExecutionStarted",
        "StepScheduled",
        "CheckpointCreated",
        "StepStarted",
        "StepFailed",
        "StepScheduled",
        "StepStarted",
        "StepCompleted",
        "CheckpointCreated",
        "StepScheduled",
        "HumanApprovalRequested",
        "HumanApprovalGranted",
        "StepStarted",
        "StepCompleted",
        "ExecutionCompleted",
    ]


def test_checkpoint_state_round_trips_and_a_rollback_resumes_from_it(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run = executions.start_execution(tenant, workflow_id=uuid4(), workflow_version=1).aggregate_id
    state = bytes(range(256)) * 4
    executions.schedule_step(tenant, run, step_id="draft")
    executions.create_checkpoint(
        tenant, run, step_id="draft", position="before", checkpoint_id="cp", **blob(state)
    )
    executions.start_step(tenant, run, step_id="draft")
    executions.complete_step(tenant, run, step_id="draft", output={"text": "hallucinated"})

    rolled_back = executions.roll_back_to_checkpoint(
        tenant, run, checkpoint_id="cp", reason="post-condition failed"
    )

    restored = executions.get_checkpoint(tenant, run, "cp")
    assert restored.inline_state == state
    assert hashlib.sha256(restored.inline_state).hexdigest() == restored.checksum
    view = executions.get_execution(tenant, run)
    assert [(s.step_id, s.status) for s in view.steps] == [("draft", "scheduled")]
    assert (view.rollbacks, rolled_back.events) == (1, ("ExecutionRolledBack",))
    with pytest.raises(InvalidCommandError) as unknown:
        executions.roll_back_to_checkpoint(tenant, run, checkpoint_id="nope")
    assert unknown.value.reason == "unknown_checkpoint"
    with pytest.raises(InvalidCommandError):
        executions.get_checkpoint(tenant, run, "nope")


def test_a_finished_run_refuses_a_checkpoint(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run = executions.start_execution(tenant, workflow_id=uuid4(), workflow_version=1).aggregate_id
    executions.schedule_step(tenant, run, step_id="a")
    executions.cancel_execution(tenant, run, reason="user", requested_by="bob")

    with pytest.raises(InvalidTransitionError) as refused:
        executions.create_checkpoint(tenant, run, step_id="a", position="after", **blob(b"x"))

    assert (refused.value.command, refused.value.current_state) == (
        "create_checkpoint",
        "cancelled",
    )
    assert executions.get_execution(tenant, run).outcome == {
        "reason": "user",
        "requested_by": "bob",
    }


def test_an_overdue_approval_takes_its_default_action(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run = executions.start_execution(tenant, workflow_id=uuid4(), workflow_version=1).aggregate_id
    executions.schedule_step(tenant, run, step_id="send")
    executions.request_human_approval(
        tenant,
        run,
        step_id="send",
        deadline=NOW + timedelta(minutes=5),
        default_action="reject",
        now=NOW,
    )

    result = executions.apply_approval_default(
        tenant, run, step_id="send", now=NOW + timedelta(minutes=6)
    )

    assert result.events == ("HumanApprovalRejected",)
    approval = executions.get_execution(tenant, run).approvals[0]
    assert (approval.status, approval.by_default) == ("rejected", True)
    assert executions.halt_execution(tenant, run, reason="nobody approved").events == (
        "ExecutionHalted",
    )


def test_a_stale_expected_version_is_a_conflict(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run = executions.start_execution(tenant, workflow_id=uuid4(), workflow_version=1)
    executions.schedule_step(tenant, run.aggregate_id, step_id="a", expected_version=1)

    with pytest.raises(ConflictError) as conflict:
        executions.schedule_step(tenant, run.aggregate_id, step_id="b", expected_version=1)

    assert conflict.value.aggregate_id == run.aggregate_id
    assert (conflict.value.expected_version, conflict.value.actual_version) == (1, 2)


def test_another_tenants_run_is_not_found(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    owner, intruder = tenant_factory(), tenant_factory()
    run = executions.start_execution(owner, workflow_id=uuid4(), workflow_version=1).aggregate_id

    with pytest.raises(NotFoundError) as on_read:
        executions.get_execution(intruder, run)
    with pytest.raises(NotFoundError) as on_write:
        executions.cancel_execution(intruder, run)
    with pytest.raises(NotFoundError):
        executions.get_execution(owner, uuid4())
    with pytest.raises(NotFoundError):
        executions.get_execution(owner, "not-a-uuid")  # type: ignore[arg-type]

    assert on_read.value.aggregate_id == on_write.value.aggregate_id == run
    assert executions.get_execution(owner, run).state == "pending"


def test_a_blank_tenant_is_refused(executions: ExecutionsApplication) -> None:
    with pytest.raises(InvalidCommandError) as refused:
        executions.start_execution(" ", workflow_id=uuid4(), workflow_version=1)

    assert refused.value.reason == "invalid_tenant"


def test_the_run_id_is_random(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant, workflow_id = tenant_factory(), uuid4()
    ids = {
        executions.start_execution(tenant, workflow_id=workflow_id, workflow_version=1).aggregate_id
        for _ in range(3)
    }

    assert len(ids) == 3
    assert all(isinstance(i, UUID) and i.version == 4 for i in ids)
