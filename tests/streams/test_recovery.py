"""The recovery processor on real Kafka: plans, attempts per step, grouping across runs."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from streams.recovery import RecoveryProcessor, RecoverySettings
from tests.streams.events import checkpoint_created, failure

pytestmark = pytest.mark.integration


@pytest.fixture
def recovery_factory(config_factory, runtime_factory):
    """Starts a recovery processor on this test's topics."""

    def start(settings: RecoverySettings | None = None) -> Any:
        return runtime_factory(RecoveryProcessor(settings), config_factory("recovery"))

    return start


def _plans(read_events, count: int) -> list[dict[str, Any]]:
    events = read_events(
        "failures", count=count, where=lambda e: e["event_type"] == "RecoveryPlanned", settle_s=1.0
    )
    return [e["payload"] for e in events]


def test_a_failing_step_is_retried_with_backoff_then_rolled_back(
    recovery_factory, publish, read_events
) -> None:
    run = uuid.uuid4()
    checkpoint = str(uuid.uuid4())
    recovery_factory(RecoverySettings(max_retries=2, backoff_ms=100))

    publish(checkpoint_created(run, checkpoint))
    # Checkpoints and failures are on different topics, which Kafka does not order against
    # each other; in a real run the checkpoint is long processed when the step fails.
    time.sleep(1.5)
    publish(
        failure(run, message="connection reset by peer (attempt 1)"),
        failure(run, message="connection reset by peer (attempt 2)"),
        failure(run, message="connection reset by peer (attempt 3)"),
    )

    plans = sorted(_plans(read_events, 3), key=lambda p: p["attempt"])
    assert [(p["plan"], p["attempt"], p["backoff_ms"]) for p in plans] == [
        ("retry", 2, 100),
        ("retry", 3, 200),
        ("rollback", 4, None),
    ]
    assert str(plans[2]["target_checkpoint_id"]) == checkpoint
    # One run, one signature: the failures are similar to each other.
    assert [p["similar_failure_count"] for p in plans] == [0, 1, 2]
    commands = [c["payload"] for c in read_events("commands", count=3, settle_s=1.0)]
    assert sorted(c["command"] for c in commands) == [
        "executions.roll_back_to_checkpoint",
        "executions.schedule_step",
        "executions.schedule_step",
    ]


def test_similar_failures_are_grouped_across_runs_and_escalated(
    recovery_factory, publish, read_events
) -> None:
    runs = [uuid.uuid4() for _ in range(3)]
    recovery_factory(RecoverySettings(escalate_after_similar=2))

    publish(
        *(
            failure(run, kind="timeout", message=f"LLM timed out after {10 + i}s")
            for i, run in enumerate(runs)
        )
    )

    plans = {p["execution_id"]: p for p in _plans(read_events, 3)}
    assert sorted(p["similar_failure_count"] for p in plans.values()) == [0, 1, 2]
    assert len({p["signature"] for p in plans.values()}) == 1
    assert sorted(p["plan"] for p in plans.values()) == ["escalate", "retry", "retry"]


def test_budget_exceeded_aborts_and_policy_violations_escalate(
    recovery_factory, publish, read_events
) -> None:
    spent, violated = uuid.uuid4(), uuid.uuid4()
    recovery_factory()

    publish(
        failure(spent, kind="budget_exceeded", message="cost 5.2 over 5"),
        failure(violated, kind="policy_violation", message="denied by budget"),
    )

    plans = {str(p["execution_id"]): p["plan"] for p in _plans(read_events, 2)}
    assert plans == {str(spent): "abort", str(violated): "escalate"}
    commands = sorted(
        c["payload"]["command"] for c in read_events("commands", count=3, settle_s=1.0)
    )
    assert commands == [
        "executions.fail_execution",
        "executions.request_human_approval",
        "executions.schedule_step",
    ]
