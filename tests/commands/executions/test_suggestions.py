"""Recovery suggestions on a run, on the in-memory store and on PostgreSQL: record, approve
(the fix applies in the same save), edit, reject, and what a suggestion may never do."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from omium.commands import ExecutionsApplication, InvalidCommandError
from tests.commands.executions.builders import NOW

DIAGNOSIS = {
    "probable_cause": "the search tool times out on long queries",
    "evidence": [{"source": "error", "quote": "search timed out", "verified": True}],
    "similar_failures": [],
    "confidence": 0.7,
}


@pytest.fixture
def executions(app_factory: Callable[..., Any]) -> ExecutionsApplication:
    return app_factory(ExecutionsApplication)  # type: ignore[no-any-return]


def escalated_run(executions: ExecutionsApplication, tenant: str) -> UUID:
    """A run whose step ``draft`` failed and waits for a human (as recovery escalates it)."""
    run = executions.start_execution(tenant, workflow_id=uuid4(), workflow_version=1).aggregate_id
    executions.schedule_step(tenant, run, step_id="draft", agent="writer")
    executions.create_checkpoint(
        tenant,
        run,
        step_id="draft",
        position="before",
        checkpoint_id="cp-before-draft",
        checksum=hashlib.sha256(b"{}").hexdigest(),
        size=2,
        storage="inline",
        inline_state=b"{}",
    )
    executions.start_step(tenant, run, step_id="draft")
    executions.fail_step(tenant, run, step_id="draft", error="search timed out")
    executions.schedule_step(tenant, run, step_id="draft")
    executions.request_human_approval(
        tenant,
        run,
        step_id="draft",
        deadline=NOW + timedelta(hours=1),
        default_action="reject",
        now=NOW,
    )
    return run


def suggest(
    executions: ExecutionsApplication, tenant: str, run: UUID, fix: dict[str, Any], sid: str = "s1"
) -> None:
    executions.suggest_fix(
        tenant,
        run,
        suggestion_id=sid,
        diagnosis=DIAGNOSIS,
        fix=fix,
        requested_by="streams.diagnosis",
        step_id="draft",
        failure_id="f-1",
        usage={"provider": "scripted", "model": "m", "cost_usd": 0.001},
    )


def test_approving_a_suggestion_applies_its_fix_in_the_same_save(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run = escalated_run(executions, tenant)
    suggest(executions, tenant, run, {"action": "fallback", "agent": "careful-writer"})

    proposed = executions.get_suggestions(tenant, run)
    result = executions.approve_suggestion(
        tenant, run, suggestion_id="s1", decided_by="alice", comment="makes sense"
    )

    [suggestion] = proposed.suggestions
    assert (suggestion.status, suggestion.step_id, suggestion.failure_id) == (
        "proposed",
        "draft",
        "f-1",
    )
    assert suggestion.fix == {"action": "fallback", "agent": "careful-writer", "step_id": "draft"}
    assert suggestion.diagnosis == DIAGNOSIS and suggestion.usage["cost_usd"] == 0.001
    assert list(result.events) == [
        "RecoverySuggestionApproved",
        "StepScheduled",
        "HumanApprovalGranted",
    ]
    assert result.data["fix"]["agent"] == "careful-writer"
    view = executions.get_execution(tenant, run)
    assert view.state == "running"
    step = next(s for s in view.steps if s.step_id == "draft")
    assert (step.status, step.agent) == ("scheduled", "careful-writer")
    [approved] = executions.get_suggestions(tenant, run).suggestions
    assert (approved.status, approved.decided_by, approved.edited) == ("approved", "alice", False)
    executions.start_step(tenant, run, step_id="draft")  # the approval no longer holds it


def test_an_edited_fix_is_the_one_applied(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run = escalated_run(executions, tenant)
    suggest(executions, tenant, run, {"action": "retry"})

    result = executions.approve_suggestion(
        tenant,
        run,
        suggestion_id="s1",
        decided_by="alice",
        fix={"action": "rollback", "checkpoint_id": "cp-before-draft"},
    )

    assert list(result.events) == [
        "RecoverySuggestionApproved",
        "HumanApprovalGranted",
        "ExecutionRolledBack",
    ]
    [approved] = executions.get_suggestions(tenant, run).suggestions
    assert approved.edited and approved.fix["action"] == "rollback"


def test_rejecting_leaves_the_run_escalated(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run = escalated_run(executions, tenant)
    suggest(executions, tenant, run, {"action": "retry"})

    result = executions.reject_suggestion(
        tenant, run, suggestion_id="s1", decided_by="bob", comment="wrong cause"
    )

    assert list(result.events) == ["RecoverySuggestionRejected"]
    view = executions.get_execution(tenant, run)
    assert view.state == "waiting_for_approval"
    with pytest.raises(InvalidCommandError) as caught:
        executions.approve_suggestion(tenant, run, suggestion_id="s1", decided_by="bob")
    assert caught.value.reason == "suggestion_rejected"


def test_an_abort_fix_fails_the_run(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run = escalated_run(executions, tenant)
    suggest(executions, tenant, run, {"action": "abort", "reason": "the source is gone"})

    executions.approve_suggestion(tenant, run, suggestion_id="s1", decided_by="alice")

    assert executions.get_execution(tenant, run).state == "failed"


def test_a_suggestion_never_resumes_a_run_a_deny_policy_halted(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run = escalated_run(executions, tenant)
    executions.halt_execution(tenant, run, reason="denied: PII in output", policy_id="no-pii")
    suggest(executions, tenant, run, {"action": "retry"})
    before = executions.get_execution(tenant, run).version

    for fix in (None, {"action": "fallback", "agent": "other"}, {"action": "abort"}):
        with pytest.raises(InvalidCommandError) as caught:
            executions.approve_suggestion(
                tenant, run, suggestion_id="s1", decided_by="alice", fix=fix
            )
        assert caught.value.reason == "run_halted"
        assert caught.value.details == {"policy_id": "no-pii"}

    after = executions.get_execution(tenant, run)
    assert (after.state, after.version) == ("halted", before)
    assert executions.get_suggestions(tenant, run).suggestions[0].status == "proposed"


@pytest.mark.parametrize(
    ("fix", "reason"),
    [
        ({"action": "retry", "input": {"query": "short"}}, "input_change_unsupported"),
        ({"action": "fallback", "model": "bigger"}, "fallback_needs_agent"),
    ],
)
def test_fixes_omium_cannot_apply_yet_are_refused_not_dropped(
    executions: ExecutionsApplication,
    tenant_factory: Callable[[], str],
    fix: dict[str, Any],
    reason: str,
) -> None:
    tenant = tenant_factory()
    run = escalated_run(executions, tenant)
    suggest(executions, tenant, run, fix)

    with pytest.raises(InvalidCommandError) as caught:
        executions.approve_suggestion(tenant, run, suggestion_id="s1", decided_by="alice")
    assert caught.value.reason == reason

    # Edited into something applicable, it goes through.
    executions.approve_suggestion(
        tenant, run, suggestion_id="s1", decided_by="alice", fix={"action": "retry"}
    )


@pytest.mark.parametrize(
    ("fix", "reason"),
    [
        ({"action": "reboot"}, "invalid_fix"),
        ({"action": "rollback", "checkpoint_id": "nope"}, "unknown_checkpoint"),
        ({"action": "retry", "step_id": "nope"}, "unknown_step"),
        ({"action": "retry", "skip_policies": True}, "invalid_fix"),
    ],
)
def test_bad_fixes_are_refused_when_suggested(
    executions: ExecutionsApplication,
    tenant_factory: Callable[[], str],
    fix: dict[str, Any],
    reason: str,
) -> None:
    tenant = tenant_factory()
    run = escalated_run(executions, tenant)

    with pytest.raises(InvalidCommandError) as caught:
        suggest(executions, tenant, run, fix)
    assert caught.value.reason == reason


def test_suggestion_ids_are_unique_and_commands_idempotent(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run = escalated_run(executions, tenant)
    first = executions.suggest_fix(
        tenant,
        run,
        suggestion_id="s1",
        diagnosis=DIAGNOSIS,
        fix={"action": "retry", "step_id": "draft"},
        requested_by="x",
        idempotency_key="k1",
    )
    again = executions.suggest_fix(
        tenant,
        run,
        suggestion_id="s1",
        diagnosis=DIAGNOSIS,
        fix={"action": "retry", "step_id": "draft"},
        requested_by="x",
        idempotency_key="k1",
    )

    assert again.version == first.version
    with pytest.raises(InvalidCommandError) as caught:
        suggest(executions, tenant, run, {"action": "retry"})
    assert caught.value.reason == "duplicate_suggestion"
