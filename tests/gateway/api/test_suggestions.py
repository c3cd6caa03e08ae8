"""Recovery suggestions over HTTP on the real gateway: a diagnosis on demand (scripted model),
approval applying the (edited) fix, rejection, and what a suggestion may never do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from omium.sdk.providers import ScriptedProvider
from omium.streams.recovery import DIAGNOSIS_AGENT
from tests.gateway.api.fixtures import Caller, future

pytestmark = pytest.mark.integration

ANSWER = {
    "probable_cause": "The act agent calls a tool that rejects long prompts.",
    "evidence": [{"source": "error", "quote": "prompt too long for tool"}],
    "fix": {"action": "fallback", "agent": "agents.careful", "reason": "it summarises first"},
    "confidence": 0.75,
}


@pytest.fixture
def scripted_model(api_app: FastAPI) -> Iterator[ScriptedProvider]:
    """The app's providers for this test: a scripted model that always gives ``ANSWER``."""
    provider = ScriptedProvider(
        {"rules": [{"agent": DIAGNOSIS_AGENT, "response": json.dumps(ANSWER)}]}
    )
    api_app.state.llm_providers = {"scripted": provider}
    yield provider
    del api_app.state.llm_providers


def escalated(caller: Caller) -> str:
    """A run whose step ``act`` failed and waits for a human; its id."""
    eid = caller.execution(caller.workflow(steps=("plan", "act")))
    run = f"/executions/{eid}"
    caller.ok(caller.post(f"{run}/steps", {"step_id": "act", "agent": "agents.act"}))
    caller.ok(caller.post(f"{run}/steps/act/start"))
    caller.ok(caller.post(f"{run}/steps/act/fail", {"error": "prompt too long for tool"}))
    caller.ok(caller.post(f"{run}/steps", {"step_id": "act"}))
    caller.ok(
        caller.post(f"{run}/steps/act/approval", {"deadline": future(), "default_action": "reject"})
    )
    return eid


def test_a_diagnosis_on_demand_then_an_edited_approval_applies_the_fix(
    caller: Caller, scripted_model: ScriptedProvider
) -> None:
    eid = escalated(caller)
    run = f"/executions/{eid}"

    created = caller.post(f"{run}/suggestions", {}, role="developer")
    accepted = caller.ok(created, 201)
    sid = accepted["suggestion_id"]

    assert accepted["events"] == ["RecoverySuggested"]
    assert created.headers["Location"] == f"/api/v1{run}/suggestions/{sid}"
    suggestion = caller.ok(caller.get(f"{run}/suggestions/{sid}"))
    assert suggestion["status"] == "proposed" and suggestion["step_id"] == "act"
    assert suggestion["fix"] == {
        "action": "fallback",
        "agent": "agents.careful",
        "reason": "it summarises first",
        "step_id": "act",
    }
    assert suggestion["diagnosis"]["evidence"][0]["verified"] is True
    assert suggestion["usage"]["provider"] == "scripted" and suggestion["requested_by"] == "alice"
    [call] = scripted_model.calls
    assert call.agent == DIAGNOSIS_AGENT and call.step_id == "act"

    # Developers may ask; only operators decide.
    assert caller.post(f"{run}/suggestions/{sid}/approve", role="developer").status_code == 403
    approved = caller.ok(
        caller.post(
            f"{run}/suggestions/{sid}/approve",
            {"fix": {"action": "fallback", "agent": "agents.other"}, "comment": "other is better"},
            role="operator",
        )
    )

    assert approved["events"] == [
        "RecoverySuggestionApproved",
        "StepScheduled",
        "HumanApprovalGranted",
    ]
    assert approved["fix"]["agent"] == "agents.other"
    view = caller.ok(caller.get(run))
    assert view["state"] == "running"
    [listed] = caller.ok(caller.get(f"{run}/suggestions"))["suggestions"]
    assert (listed["status"], listed["edited"], listed["decided_by"]) == ("approved", True, "alice")


def test_rejecting_leaves_the_run_escalated(
    caller: Caller, scripted_model: ScriptedProvider
) -> None:
    eid = escalated(caller)
    run = f"/executions/{eid}"
    sid = caller.ok(caller.post(f"{run}/suggestions", {"step_id": "act"}), 201)["suggestion_id"]

    rejected = caller.ok(
        caller.post(f"{run}/suggestions/{sid}/reject", {"comment": "wrong"}, role="operator")
    )

    assert rejected["events"] == ["RecoverySuggestionRejected"]
    assert caller.ok(caller.get(run))["state"] == "waiting_for_approval"
    again = caller.post(f"{run}/suggestions/{sid}/approve", role="operator")
    assert again.status_code == 422 and again.json()["reason"] == "suggestion_rejected"


def test_a_suggestion_cannot_resume_a_run_a_deny_policy_halted(
    caller: Caller, scripted_model: ScriptedProvider
) -> None:
    eid = escalated(caller)
    run = f"/executions/{eid}"
    sid = caller.ok(caller.post(f"{run}/suggestions", {}), 201)["suggestion_id"]
    caller.ok(caller.post(f"{run}/halt", {"reason": "PII in output", "policy_id": "no-pii"}))

    refused = caller.post(f"{run}/suggestions/{sid}/approve", role="operator")

    assert refused.status_code == 422, refused.text
    problem: dict[str, Any] = refused.json()
    assert problem["reason"] == "run_halted" and problem["details"] == {"policy_id": "no-pii"}
    assert caller.ok(caller.get(run))["state"] == "halted"


def test_a_failing_provider_is_a_502_and_records_nothing(
    caller: Caller, scripted_model: ScriptedProvider
) -> None:
    eid = escalated(caller)
    scripted_model.inject_fault("rate_limit", agent=DIAGNOSIS_AGENT)

    failed = caller.post(f"/executions/{eid}/suggestions", {})

    assert failed.status_code == 502, failed.text
    assert failed.json()["type"].endswith("model-provider-failed")
    assert failed.json()["retry_after"] == 1.0
    assert caller.ok(caller.get(f"/executions/{eid}/suggestions"))["suggestions"] == []


def test_a_run_without_a_failure_has_nothing_to_diagnose(
    caller: Caller, scripted_model: ScriptedProvider
) -> None:
    eid = caller.running("plan")

    refused = caller.post(f"/executions/{eid}/suggestions", {})

    assert refused.status_code == 422 and refused.json()["reason"] == "nothing_to_diagnose"
    running = caller.post(f"/executions/{eid}/suggestions", {"step_id": "plan"})
    assert running.status_code == 422 and running.json()["reason"] == "step_not_failed"
    assert scripted_model.calls == []
