"""``on_timeout: escalate`` on the live gateway with the real processors.

Nobody decides a gated step by its deadline: the approvals processor asks for the default, the
run records ``HumanApprovalEscalated`` and the escalation's deciders take over (with their own
deadline and final default). The escalation is in the run's timeline, in ``omium approvals
list`` (routed to the escalation's deciders) and in the compliance approvals history.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from omium.sdk.client import Client
from tests.cli.fixtures import Cli
from tests.cli.test_workflow_approvals import TIMEOUT_S, gated_workflow, start, wait_until

pytestmark = pytest.mark.integration


def escalating(name: str, *, then: str, timeout_s: float) -> dict[str, Any]:
    """``gated`` asks bob for 1 s, then escalates to carol (admins) for ``timeout_s``."""
    return gated_workflow(
        name,
        timeout_s=1,
        on_timeout="escalate",
        approvers=["bob"],
        prompt="Ship it?",
        escalation={
            "approvers": ["carol"],
            "approver_role": "admin",
            "timeout_s": timeout_s,
            "on_timeout": then,
        },
    )


def test_an_unanswered_approval_passes_to_its_escalation_deciders(
    cli: Cli, operator_client: Client
) -> None:
    run = start(operator_client, escalating("esc-human", then="reject", timeout_s=600))
    view = wait_until(operator_client, run, lambda v: v.approvals and v.approvals[0].escalated_at)
    (approval,) = view.approvals
    assert approval.status == "pending" and view.state == "waiting_for_approval"
    assert (approval.approvers, approval.approver_role, approval.default_action) == (
        ["carol"],
        "admin",
        "reject",
    )
    assert approval.escalated_at is not None
    assert approval.deadline > approval.escalated_at  # carol has her own 600 s
    assert approval.escalation == {
        "approvers": ["carol"],
        "approver_role": "admin",
        "timeout_s": 600.0,
        "default_action": "reject",
    }

    # Routed to carol: the approvals list says who decides now, and that it was escalated.
    items = cli.eventually(
        "approvals", "list", until=lambda items: any(i["execution_id"] == run for i in items)
    )
    (item,) = [i for i in items if i["execution_id"] == run]
    assert item["approvers"] == ["carol"] and item["escalated_at"]
    listed = cli.ok("approvals", "list").stdout
    assert "carol (role admin+) [escalated]" in " ".join(listed.split())

    # bob's time is over; carol must also hold the admin role.
    assert "reason=not_an_approver" in cli.fails("runs", "approve", run, subject="bob")
    assert "reason=not_an_approver" in cli.fails("runs", "approve", run, subject="carol")
    cli.ok("runs", "approve", run, subject="carol", role="admin")
    done = operator_client.wait_for_completion(run, timeout=TIMEOUT_S)
    assert done.state == "completed", done.outcome
    (decided,) = done.approvals
    assert (decided.decided_by, decided.by_default) == ("carol", False)

    timeline = cli.eventually(
        "runs",
        "timeline",
        run,
        until=lambda t: "ExecutionCompleted" in [e["event_type"] for e in t["events"]],
    )
    types = [e["event_type"] for e in timeline["events"] if e["event_type"].startswith("Human")]
    assert types == ["HumanApprovalRequested", "HumanApprovalEscalated", "HumanApprovalGranted"]
    (escalated,) = [e for e in timeline["events"] if e["event_type"] == "HumanApprovalEscalated"]
    assert escalated["summary"]["payload"]["approvers"] == ["carol"]


def test_an_escalation_nobody_answers_ends_with_its_own_default(
    operator_client: Client,
) -> None:
    run = start(operator_client, escalating("esc-default", then="approve", timeout_s=1))
    done = operator_client.wait_for_completion(run, timeout=TIMEOUT_S)
    assert done.state == "completed", done.outcome
    (approval,) = done.approvals
    assert (approval.status, approval.decided_by, approval.by_default) == (
        "granted",
        "system:deadline",
        True,
    )
    assert approval.escalated_at is not None and approval.approvers == ["carol"]
    history = wait_for_history(operator_client, run, count=3)
    assert [h["event_type"] for h in history] == [
        "HumanApprovalRequested",
        "HumanApprovalEscalated",
        "HumanApprovalGranted",
    ]
    assert history[1]["approvers"] == ["carol"]


def wait_for_history(client: Client, run: str, *, count: int) -> list[dict[str, Any]]:
    """The run's approval events in the compliance history, oldest first, once all are there."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        rows = client.request("GET", "/api/v1/compliance/approvals", params={"limit": 200})
        mine = sorted((r for r in rows if r["execution_id"] == run), key=lambda r: r["occurred_at"])
        if len(mine) >= count or time.monotonic() > deadline:
            return mine
        time.sleep(0.3)
