"""Recovery planning without Kafka: each failure kind to its plan, backoff, escalation, grouping."""

from __future__ import annotations

import pytest

from omium.streams.recovery import RecoverySettings, backoff_ms, normalise_message, plan, signature
from omium.streams.recovery._mapping import regrouped

SETTINGS = RecoverySettings(max_retries=3, backoff_ms=500, max_backoff_ms=3000)


@pytest.mark.parametrize(
    ("kind", "action"),
    [
        ("exception", "retry"),
        ("timeout", "retry"),
        ("postcondition_failed", "rollback"),
        ("hallucination", "rollback"),
        ("policy_violation", "escalate"),
        ("consensus_failed", "escalate"),
        ("budget_exceeded", "abort"),
    ],
)
def test_each_failure_kind_gets_its_plan(kind: str, action: str) -> None:
    chosen = plan(kind, attempts=1, similar=0, settings=SETTINGS, checkpoint_id="cp-1")

    assert chosen.action == action
    assert chosen.reason


def test_retries_back_off_exponentially_up_to_the_cap() -> None:
    delays = [backoff_ms(SETTINGS, retry) for retry in range(1, 6)]

    assert delays == [500, 1000, 2000, 3000, 3000]
    planned = [
        plan("timeout", attempts=a, similar=0, settings=SETTINGS, checkpoint_id=None)
        for a in (1, 2, 3)
    ]
    assert [p.backoff_ms for p in planned] == [500, 1000, 2000]


def test_after_the_retries_come_fallback_then_rollback_then_escalation() -> None:
    with_fallback = RecoverySettings(max_retries=1, fallback_agent="careful-writer")

    assert (
        plan("exception", attempts=2, similar=0, settings=with_fallback, checkpoint_id="cp").action
        == "fallback"
    )
    assert (
        plan(
            "exception",
            attempts=2,
            similar=0,
            settings=SETTINGS.overridden({"recovery.max_retries": "1"}),
            checkpoint_id="cp",
        ).action
        == "rollback"
    )
    assert (
        plan("exception", attempts=4, similar=0, settings=SETTINGS, checkpoint_id=None).action
        == "escalate"
    )


def test_escalation_after_n_similar_failures_and_abort_after_max_attempts() -> None:
    assert (
        plan("exception", attempts=1, similar=5, settings=SETTINGS, checkpoint_id=None).action
        == "escalate"
    )
    assert (
        plan("exception", attempts=1, similar=4, settings=SETTINGS, checkpoint_id=None).action
        == "retry"
    )
    assert (
        plan("exception", attempts=8, similar=0, settings=SETTINGS, checkpoint_id="cp").action
        == "abort"
    )


def test_failure_details_override_the_settings() -> None:
    settings = SETTINGS.overridden({"recovery.max_retries": "0", "recovery.fallback_model": "big"})

    chosen = plan("exception", attempts=1, similar=0, settings=settings, checkpoint_id=None)

    assert (chosen.action, chosen.fallback_model) == ("fallback", "big")


def test_messages_that_differ_only_in_ids_and_numbers_share_a_signature() -> None:
    a = "Timeout after 30.5s calling 'search' for run 3f2b8a9c-1d2e-4f5a-8b9c-0d1e2f3a4b5c"
    b = "timeout after 12s calling 'lookup' for run 9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"

    assert normalise_message(a) == normalise_message(b)
    assert signature(workflow="w", step="s", kind="timeout", message=a) == signature(
        workflow="w", step="s", kind="timeout", message=b
    )
    assert signature(workflow="w", step="s", kind="timeout", message=a) != signature(
        workflow="w", step="other", kind="timeout", message=a
    )


def _failure(**details: str) -> dict[str, object]:
    return {
        "event_id": "e1",
        "tenant_id": "t",
        "correlation_id": None,
        "failure_id": "f1",
        "execution_id": "run-1",
        "step_id": "draft",
        "kind": "hallucination",
        "message": "grounded: 1 of 4 claims unsupported",
        "agent": "writer",
        "model": None,
        "details": {"workflow_id": "wf-1", **details},
    }


def test_the_checkpoint_named_by_the_failure_wins_over_the_one_seen_on_the_run() -> None:
    # The failures topic can be read before the executions topic that carries the checkpoint.
    named = regrouped(_failure(checkpoint_id="before-draft"), {}, attempts=1)
    both = regrouped(_failure(checkpoint_id="before-draft"), {"checkpoint": "older"}, attempts=1)
    unnamed = regrouped(_failure(), {"checkpoint": "seen-on-run"}, attempts=1)

    assert (named["checkpoint"], both["checkpoint"]) == ("before-draft", "before-draft")
    assert unnamed["checkpoint"] == "seen-on-run"
    chosen = plan(
        "hallucination", attempts=1, similar=0, settings=SETTINGS, checkpoint_id=named["checkpoint"]
    )
    assert (chosen.action, chosen.checkpoint_id) == ("rollback", "before-draft")
