"""Workflow steps that require a human approval, on the live gateway and the real processors.

The orchestrator asks for the approval when the step is due, the approvals processor applies the
default when nobody decides in time, and the other branches of the run go on meanwhile.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from omium.sdk.client import Client, Execution
from tests.cli.fixtures import AGENT, Cli

pytestmark = pytest.mark.integration

TIMEOUT_S = 90.0


def gated_workflow(name: str, **approval: Any) -> dict[str, Any]:
    """plan, then gated (needs an approval) and side in parallel, then report."""
    return {
        "name": name,
        "agents": {"echo": AGENT},
        "steps": [
            {"id": "plan", "agent": "echo"},
            {"id": "gated", "agent": "echo", "needs": ["plan"], "approval": approval},
            {"id": "side", "agent": "echo", "needs": ["plan"]},
            {"id": "report", "agent": "echo", "needs": ["gated", "side"]},
        ],
    }


def start(client: Client, definition: dict[str, Any]) -> str:
    workflow = client.register_workflow(definition).workflow_id
    return client.start_execution(workflow, workflow_version=1).execution_id


def wait_until(client: Client, run: str, check: Any) -> Execution:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        view = client.get_execution(run)
        if check(view):
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.2)


def statuses(view: Execution) -> dict[str, str]:
    return {step.step_id: step.status for step in view.steps}


def test_a_gated_step_waits_for_its_approver_while_the_other_branch_runs(
    cli: Cli, operator_client: Client
) -> None:
    run = start(
        operator_client,
        gated_workflow("gated-human", timeout_s=600, approvers=["bob"], prompt="Publish it?"),
    )
    waiting = wait_until(
        operator_client,
        run,
        lambda v: v.state == "waiting_for_approval" and statuses(v).get("side") == "completed",
    )
    assert statuses(waiting)["gated"] == "scheduled"  # held back, not started
    (approval,) = waiting.approvals
    assert (approval.prompt, approval.approvers, approval.default_action) == (
        "Publish it?",
        ["bob"],
        "reject",
    )
    assert "reason=not_an_approver" in cli.fails("runs", "approve", run)
    cli.ok("runs", "approve", run, subject="bob")
    done = operator_client.wait_for_completion(run, timeout=TIMEOUT_S)
    assert done.state == "completed", done.outcome
    assert done.outcome["output"]["report"]["step"] == "report"


@pytest.mark.parametrize(("on_timeout", "state"), [("approve", "completed"), ("reject", "failed")])
def test_nobody_decides_and_the_default_applies_at_the_deadline(
    operator_client: Client, on_timeout: str, state: str
) -> None:
    run = start(
        operator_client, gated_workflow(f"gated-{on_timeout}", timeout_s=2, on_timeout=on_timeout)
    )
    done = operator_client.wait_for_completion(run, timeout=TIMEOUT_S)
    assert done.state == state, done.outcome
    (approval,) = done.approvals
    assert (approval.decided_by, approval.by_default) == ("system:deadline", True)
    assert statuses(done)["side"] == "completed"
    if state == "failed":
        assert done.outcome["error_type"] == "approval_rejected"
        assert "gated" not in {s for s, status in statuses(done).items() if status == "completed"}
