"""Approvals whose default is ``escalate``: the checks, and what the deadline does to them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omium.commands import InvalidCommandError
from omium.commands.executions import Execution, ExecutionView

ASKED = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
DEADLINE = ASKED + timedelta(minutes=5)
TO_CAROL = {"approvers": ["carol"], "approver_role": "admin", "timeout_s": 60}


def waiting(**approval: Any) -> Execution:
    run = Execution.start(tenant_id="acme", workflow_id=uuid.uuid4(), workflow_version=1)
    run.schedule_step("gated")
    run.request_human_approval(
        "gated", deadline=DEADLINE, now=ASKED, prompt=None, approvers=["bob"], **approval
    )
    return run


@pytest.mark.parametrize(
    ("approval", "problem"),
    [
        ({"default_action": "escalate"}, "needs an escalation"),
        ({"default_action": "reject", "escalation": TO_CAROL}, "needs default_action escalate"),
        ({"default_action": "escalate", "escalation": {**TO_CAROL, "timeout_s": 0}}, "timeout_s"),
        (
            {"default_action": "escalate", "escalation": {**TO_CAROL, "default_action": "halt"}},
            "approve or reject",
        ),
        (
            {"default_action": "escalate", "escalation": {"timeout_s": 60}},
            "approvers and/or approver_role",
        ),
        (
            {"default_action": "escalate", "escalation": {**TO_CAROL, "approver_role": "boss"}},
            "approver_role must be one of",
        ),
    ],
)
def test_a_bad_escalation_is_refused(approval: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidCommandError) as refused:
        waiting(**approval)
    assert problem in str(refused.value)
    assert refused.value.reason in ("invalid_escalation", "invalid_approver_role")


def test_the_deadline_passes_the_approval_to_the_escalation_then_its_default_applies() -> None:
    run = waiting(default_action="escalate", escalation={**TO_CAROL, "default_action": "approve"})
    late = DEADLINE + timedelta(seconds=2)
    run.apply_approval_default("gated", now=late)

    view = ExecutionView.of(run)
    (approval,) = view.approvals
    assert (approval.status, approval.approvers, approval.approver_role) == (
        "pending",
        ("carol",),
        "admin",
    )
    assert (approval.deadline, approval.default_action) == (late + timedelta(seconds=60), "approve")
    assert approval.escalated_at == late
    assert view.state == "waiting_for_approval"
    assert [e.__class__.__name__ for e in run.collect_events()][-1] == "HumanApprovalEscalated"

    # bob's turn is over; carol needs her role; the escalation's deadline is not due yet.
    with pytest.raises(InvalidCommandError, match="its approvers are carol"):
        run.grant_approval("gated", decided_by="bob", now=late, decider_roles=["admin"])
    with pytest.raises(InvalidCommandError, match="needs a decider with role admin"):
        run.grant_approval("gated", decided_by="carol", now=late, decider_roles=["operator"])
    with pytest.raises(InvalidCommandError) as early:
        run.apply_approval_default("gated", now=late + timedelta(seconds=59))
    assert early.value.reason == "deadline_not_reached"

    run.apply_approval_default("gated", now=late + timedelta(seconds=60))
    (decided,) = ExecutionView.of(run).approvals
    assert (decided.status, decided.decided_by, decided.by_default) == (
        "granted",
        "system:deadline",
        True,
    )


def test_the_escalation_decider_decides_in_time() -> None:
    run = waiting(default_action="escalate", escalation=TO_CAROL)
    run.apply_approval_default("gated", now=DEADLINE)
    run.reject_approval(
        "gated", decided_by="carol", comment="no", now=DEADLINE, decider_roles=["admin"]
    )
    (decided,) = ExecutionView.of(run).approvals
    assert (decided.status, decided.decided_by, decided.by_default) == ("rejected", "carol", False)
