"""Narratives over HTTP: a run from start to end, and the refusals a client must be able to read.

Invalid transitions name the state, stale versions name both versions, bad domain arguments
name a reason.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from tests.gateway.api.fixtures import POLICY_MODULE, Caller, blob_fields, future

pytestmark = pytest.mark.integration


def slug(problem: dict[str, Any]) -> str:
    """The last part of a problem's ``type``."""
    return str(problem["type"]).rsplit(":", 1)[1]


def test_a_run_from_start_to_end(caller: Caller) -> None:
    wid = caller.workflow(steps=("plan", "act"))
    eid = caller.execution(wid)
    run = f"/executions/{eid}"
    caller.ok(
        caller.post(f"{run}/steps", {"step_id": "plan", "agent": "agents.plan"}, role="developer")
    )
    caller.ok(caller.post(f"{run}/steps/plan/start", role="developer"))
    state = b'{"messages": ["hi"]}'
    checkpoint = caller.ok(
        caller.post(
            f"{run}/checkpoints",
            {"step_id": "plan", "position": "after", **blob_fields(state)},
            role="developer",
        ),
        201,
    )
    caller.ok(
        caller.post(f"{run}/steps/plan/complete", {"output": {"plan": ["a"]}}, role="developer")
    )
    # A gated step waits for a human; the decision is recorded under the caller's name.
    caller.ok(caller.post(f"{run}/steps", {"step_id": "act"}, role="developer"))
    caller.ok(
        caller.post(
            f"{run}/steps/act/approval",
            {"deadline": future(), "default_action": "reject", "prompt": "ok?"},
            role="developer",
        )
    )
    assert caller.ok(caller.get(run))["state"] == "waiting_for_approval"
    caller.ok(caller.post(f"{run}/steps/act/approval/grant", {"comment": "fine"}, role="operator"))
    # A failed attempt, a retry, then success.
    caller.ok(caller.post(f"{run}/steps/act/start", role="developer"))
    caller.ok(
        caller.post(f"{run}/steps/act/fail", {"error": "429 from the model"}, role="developer")
    )
    caller.ok(caller.post(f"{run}/steps", {"step_id": "act"}, role="developer"))
    caller.ok(caller.post(f"{run}/steps/act/start", role="developer"))
    caller.ok(
        caller.post(f"{run}/steps/act/complete", {"output": {"sent": True}}, role="developer")
    )
    done = caller.ok(caller.post(f"{run}/complete", {"output": {"answer": 42}}, role="developer"))

    view = caller.get(run)
    body = caller.ok(view)
    assert view.headers["etag"] == f'"{done["version"]}"' == f'"{body["version"]}"'
    assert body["state"] == "completed" and body["outcome"] == {"output": {"answer": 42}}
    assert body["workflow_id"] == wid and body["input"] == {"question": "why?"}
    steps = {step["step_id"]: step for step in body["steps"]}
    assert steps["act"]["attempts"] == 2 and steps["act"]["status"] == "completed"
    [approval] = body["approvals"]
    assert approval["status"] == "granted" and approval["decided_by"] == caller.subject
    [listed] = body["checkpoints"]
    assert listed["inline_state"] is None and listed["checkpoint_id"] == checkpoint["checkpoint_id"]
    read = caller.ok(caller.get(f"{run}/checkpoints/{checkpoint['checkpoint_id']}"))
    assert base64.b64decode(read["inline_state"]) == state


def test_invalid_transition_names_the_current_state(caller: Caller) -> None:
    eid = caller.running()
    caller.ok(caller.post(f"/executions/{eid}/cancel", {"reason": "stop"}))
    refusals = {
        "/steps/plan/complete": "complete_step",
        "/steps/plan/start": "start_step",
        "/halt": "halt_execution",
        "/cancel": "cancel_execution",
        "/complete": "complete_execution",
    }
    for suffix, command in refusals.items():
        body = {"reason": "again"} if suffix == "/halt" else None
        response = caller.post(f"/executions/{eid}{suffix}", body)
        assert response.status_code == 409, response.text
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert slug(problem) == "invalid-transition"
        assert problem["current_state"] == "cancelled"
        assert problem["command"] == command and problem["aggregate_id"] == eid
        assert "cancelled" in problem["detail"]


def test_approval_commands_need_a_waiting_run(caller: Caller) -> None:
    eid = caller.running()
    response = caller.post(f"/executions/{eid}/steps/plan/approval/grant")
    assert response.status_code == 409
    assert response.json()["current_state"] == "running"


def test_if_match_and_expected_version(caller: Caller) -> None:
    eid = caller.execution()
    etag = caller.get(f"/executions/{eid}").headers["etag"]
    assert etag == '"1"'
    ok = caller.post(f"/executions/{eid}/steps", {"step_id": "plan"}, If_Match=etag)
    assert caller.ok(ok)["version"] == 2 and ok.headers["etag"] == '"2"'
    stale = caller.post(f"/executions/{eid}/steps", {"step_id": "act"}, If_Match=etag)
    assert stale.status_code == 409
    assert {"expected_version": 1, "actual_version": 2}.items() <= stale.json().items()
    in_body = caller.post(f"/executions/{eid}/steps", {"step_id": "act", "expected_version": 1})
    assert in_body.status_code == 409 and slug(in_body.json()) == "conflict"
    anything = caller.post(f"/executions/{eid}/steps", {"step_id": "act"}, If_Match="*")
    assert anything.status_code == 200
    for bad in ('W/"3"', '"3", "4"', "3", '"abc"'):
        response = caller.post(f"/executions/{eid}/steps", {"step_id": "x"}, If_Match=bad)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["reason"] == "if_match"
    disagree = caller.post(
        f"/executions/{eid}/steps", {"step_id": "x", "expected_version": 3}, If_Match='"4"'
    )
    assert disagree.status_code == 400


def test_start_needs_an_existing_workflow_version(caller: Caller) -> None:
    wid = caller.workflow()
    missing = caller.post("/executions", {"workflow_id": wid, "workflow_version": 2})
    assert missing.status_code == 422
    assert missing.json()["reason"] == "unknown_workflow_version"
    unknown = caller.post(
        "/executions",
        {"workflow_id": "00000000-0000-4000-8000-000000000000", "workflow_version": 1},
    )
    assert unknown.status_code == 404 and unknown.json()["aggregate_type"] == "Workflow"


def test_workflow_names_and_versions(caller: Caller) -> None:
    wid = caller.workflow("triage")
    again = caller.post(
        "/workflows", {"name": "triage", "definition": {"steps": [{"id": "a", "agent": "x"}]}}
    )
    assert again.status_code == 409 and slug(again.json()) == "already-exists"
    cycle = caller.post(
        f"/workflows/{wid}/versions",
        {
            "definition": {
                "steps": [
                    {"id": "a", "agent": "x", "needs": ["b"]},
                    {"id": "b", "agent": "y", "needs": ["a"]},
                ]
            }
        },
    )
    assert cycle.status_code == 422 and cycle.json()["reason"] == "cycle"
    published = caller.ok(
        caller.post(
            f"/workflows/{wid}/versions", {"definition": {"steps": [{"id": "only", "agent": "z"}]}}
        ),
        201,
    )
    assert published["definition_version"] == 2
    first = caller.ok(caller.get(f"/workflows/{wid}", definition_version=1))
    assert [s["id"] for s in first["definition"]["steps"]] == ["plan", "act"]
    assert first["latest_version"] == 2
    assert caller.get(f"/workflows/{wid}", definition_version=3).status_code == 404
    [found] = caller.get("/workflows", name="triage").json()
    assert found["workflow_id"] == wid and found["definition_version"] == 2


def test_policy_versions_and_compile_errors(caller: Caller) -> None:
    pid = caller.policy("budget")
    broken = caller.post(
        "/policies", {"name": "budget", "module": "package x\nallow {", "mode": "deny"}
    )
    assert broken.status_code == 422 and slug(broken.json()) == "invalid-policy"
    assert broken.json()["compiler_message"]
    new_only = caller.post(
        "/policies",
        {"name": "budget", "module": POLICY_MODULE, "mode": "warn", "expected_version": 0},
    )
    assert new_only.status_code == 409
    second = caller.ok(
        caller.post(
            "/policies",
            {"name": "budget", "module": POLICY_MODULE, "mode": "warn", "expected_version": 1},
        ),
        201,
    )
    assert second["policy_version"] == 2 and second["package"] == "omium.budget"
    first = caller.ok(caller.get(f"/policies/{pid}", policy_version=1))
    assert first["mode"] == "deny" and first["latest_version"] == 2
    assert caller.get(f"/policies/{pid}", policy_version=9).status_code == 404


def test_consensus_refusals_and_outcomes(caller: Caller) -> None:
    rid = caller.round(("a", "b", "c"))
    rounds = f"/consensus/rounds/{rid}"
    outsider = caller.post(f"{rounds}/votes", {"participant": "zed", "choice": "yes"})
    assert outsider.status_code == 409 and outsider.json()["reason"] == "not_a_participant"
    caller.ok(caller.post(f"{rounds}/votes", {"participant": "a", "choice": "yes"}))
    still_open = caller.ok(caller.post(f"{rounds}/decide"))
    assert still_open["status"] == "open" and still_open["events"] == []
    caller.ok(caller.post(f"{rounds}/votes", {"participant": "b", "choice": "yes"}))
    decided = caller.ok(caller.post(f"{rounds}/decide"))
    assert decided["status"] == "reached" and decided["decision"] == "yes"
    assert decided["tally"] == {"yes": 2.0}
    late = caller.post(f"{rounds}/votes", {"participant": "c", "choice": "no"})
    assert late.status_code == 409 and late.json()["reason"] == "round_decided"
    view = caller.ok(caller.get(rounds))
    assert view["votes"] == {"a": "yes", "b": "yes"} and view["decision"] == "yes"
    for body in (
        {"rule": "k_of_n"},
        {"rule": "majority", "threshold": 0.5},
        {"rule": "weighted", "threshold": 0.5, "weights": {"a": 1}},
    ):
        bad = caller.post(
            "/consensus/rounds", {"participants": ["a", "b"], "deadline": future(), **body}
        )
        assert bad.status_code == 422 and slug(bad.json()) == "invalid-command", body


def test_checkpoint_refusals(caller: Caller) -> None:
    eid = caller.running()
    fields = blob_fields(b"state")
    wrong = caller.post(
        f"/executions/{eid}/checkpoints",
        {"step_id": "plan", "position": "before", **fields, "checksum": "0" * 64},
    )
    assert wrong.status_code == 422 and wrong.json()["reason"] == "checksum_mismatch"
    assert caller.get(f"/executions/{eid}/checkpoints/nope").status_code == 404
    unknown = caller.post(f"/executions/{eid}/rollback", {"checkpoint_id": "nope"})
    assert unknown.status_code == 422 and unknown.json()["reason"] == "unknown_checkpoint"


def test_a_key_reused_for_another_command_is_refused(caller: Caller) -> None:
    eid = caller.execution()
    first = caller.post(f"/executions/{eid}/steps", {"step_id": "a"}, Idempotency_Key="k-1")
    assert first.status_code == 200
    other = caller.post(f"/executions/{eid}/steps", {"step_id": "b"}, Idempotency_Key="k-1")
    assert other.status_code == 422 and slug(other.json()) == "idempotency-key-reused"


def test_keys_are_scoped_per_tenant(caller_factory: Callable[..., Caller]) -> None:
    one, two = caller_factory(), caller_factory()
    body = {"name": "same", "definition": {"steps": [{"id": "a", "agent": "x"}]}}
    first = one.post("/workflows", body, Idempotency_Key="shared")
    second = two.post("/workflows", body, Idempotency_Key="shared")
    assert first.status_code == second.status_code == 201
    assert first.json()["workflow_id"] != second.json()["workflow_id"]
