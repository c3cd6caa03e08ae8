"""The sync client against a real gateway: a run's narrative, typed answers, typed refusals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from omium.sdk.client import (
    Client,
    CompletionTimeoutError,
    ConflictError,
    ExecutionAccepted,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    UnauthorizedError,
)
from omium.sdk.workflow import WorkflowValidationError

pytestmark = pytest.mark.integration

DEFINITION = {
    "name": "two-steps",
    "steps": [{"id": "plan", "agent": "agents.plan"}, {"id": "act", "agent": "agents.act"}],
}


def test_a_run_from_registration_to_completion(client_factory: Callable[..., Client]) -> None:
    omium = client_factory("operator")
    workflow = omium.register_workflow(DEFINITION)
    run = omium.start_run(workflow.workflow_id, input={"question": "why?"})
    assert isinstance(run, ExecutionAccepted) and run.events == ["ExecutionStarted"]

    omium.schedule_step(run.execution_id, "plan")
    omium.start_step(run.execution_id, "plan")
    checkpoint = omium.create_checkpoint(
        run.execution_id, "plan", position="after", state=b'{"notes": 1}'
    )
    omium.complete_step(run.execution_id, "plan", output={"plan": ["a"]})
    omium.schedule_step(run.execution_id, "act")
    omium.request_approval(
        run.execution_id,
        "act",
        default_action="reject",
        deadline=datetime.now(UTC) + timedelta(hours=1),
        prompt="ok?",
    )
    assert omium.get_execution(run.execution_id).state == "waiting_for_approval"
    omium.approve(run.execution_id, "act", comment="fine")
    omium.start_step(run.execution_id, "act")
    omium.complete_step(run.execution_id, "act")
    omium.complete_execution(run.execution_id, output={"answer": 42})

    done = omium.wait_for_completion(run.execution_id, timeout=5)
    assert done.state == "completed" and done.outcome == {"output": {"answer": 42}}
    assert done.approvals[0].decided_by == "alice" and done.approvals[0].comment == "fine"
    stored = omium.get_checkpoint(run.execution_id, checkpoint.checkpoint_id)
    assert stored.state_bytes() == b'{"notes": 1}' and stored.size == 12


def test_register_from_a_file_validates_it_locally(
    client_factory: Callable[..., Client], tmp_path: Path
) -> None:
    omium = client_factory()
    good = Path(__file__).parents[3] / "examples" / "workflows" / "research_report.yaml"
    accepted = omium.register_workflow(good)
    assert omium.get_workflow(accepted.workflow_id).name == "research-report"

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nagents: {}\nsteps: []\n")
    with pytest.raises(WorkflowValidationError):
        omium.register_workflow(bad)


def test_refusals_are_typed_problems(client_factory: Callable[..., Client]) -> None:
    omium = client_factory("developer")
    run = omium.start_run(omium.register_workflow(DEFINITION).workflow_id)

    with pytest.raises(NotFoundError) as missing:
        omium.get_execution("00000000-0000-0000-0000-000000000000")
    assert missing.value.status == 404 and missing.value.slug == "not-found"

    with pytest.raises(ConflictError) as refused:
        omium.complete_step(run.execution_id, "plan")
    assert (
        refused.value.slug in {"invalid-transition", "domain-rule-violated"}
        or refused.value.status == 409
    )

    with pytest.raises(InvalidRequestError) as invalid:
        omium.schedule_step(run.execution_id, "  ")
    assert invalid.value.status == 422

    with pytest.raises(ForbiddenError) as forbidden:
        omium.halt_execution(run.execution_id, reason="stop")
    assert forbidden.value.extensions["required_role"] == "operator"


def test_stale_versions_conflict(client_factory: Callable[..., Client]) -> None:
    omium = client_factory()
    run = omium.start_run(omium.register_workflow(DEFINITION).workflow_id)
    omium.schedule_step(run.execution_id, "plan", expected_version=run.version)
    with pytest.raises(ConflictError) as stale:
        omium.schedule_step(run.execution_id, "act", expected_version=run.version)
    assert stale.value.slug == "conflict"
    assert stale.value.extensions["actual_version"] == run.version + 1


def test_bad_credentials_are_unauthorized(live_gateway: object) -> None:
    url = live_gateway.url  # type: ignore[attr-defined]
    with Client(url, token="not-a-jwt") as omium, pytest.raises(UnauthorizedError) as refused:
        omium.whoami()
    assert refused.value.reason == "invalid_token"
    with pytest.raises(UnauthorizedError):
        Client.connect(url, api_key="omk_0000000000000000_nope")


def test_api_keys_authenticate_agents(
    client_factory: Callable[..., Client], live_gateway: object
) -> None:
    admin = client_factory("admin")
    issued = admin.create_api_key("worker-1", role="developer")
    with Client.connect(live_gateway.url, api_key=issued.key) as agent:  # type: ignore[attr-defined]
        me = agent.whoami()
        assert me.method == "api_key" and me.key_id == issued.key_id and me.role == "developer"
    assert [key.key_id for key in admin.list_api_keys()] == [issued.key_id]
    admin.revoke_api_key(issued.key_id)
    with Client(live_gateway.url, api_key=issued.key) as agent, pytest.raises(UnauthorizedError):  # type: ignore[attr-defined]
        agent.whoami()


def test_wait_for_completion_times_out(client_factory: Callable[..., Client]) -> None:
    omium = client_factory()
    run = omium.start_run(omium.register_workflow(DEFINITION).workflow_id)
    with pytest.raises(CompletionTimeoutError) as waited:
        omium.wait_for_completion(run.execution_id, timeout=0.3)
    assert waited.value.state == "pending" and waited.value.execution_id == run.execution_id


def test_consensus_and_policies(client_factory: Callable[..., Client]) -> None:
    omium = client_factory("operator")
    opened = omium.open_round(
        ["a", "b", "c"],
        rule="majority",
        deadline=datetime.now(UTC) + timedelta(hours=1),
        subject="publish?",
    )
    for voter in ("a", "b"):
        omium.cast_vote(opened.round_id, voter, "yes", rationale="good")
    decision = omium.decide_round(opened.round_id)
    assert decision.status == "reached" and decision.decision == "yes"
    assert omium.get_round(opened.round_id).decision == "yes"

    module = "package omium.budget\n\ndefault allow := true\n"
    published = omium.publish_policy("budget", module, mode="warn")
    assert omium.get_policy(published.policy_id).mode == "warn"
    assert [p.name for p in omium.find_policies(name="budget")] == ["budget"]
