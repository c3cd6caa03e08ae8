"""The recovery processor on real Kafka: plans, attempts per step, grouping across runs."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from omium.kernel.settings import KafkaSettings
from omium.streams.base import ProcessorConfig
from omium.streams.recovery import BY_SIGNATURE, RecoveryProcessor, RecoverySettings
from tests.streams.conftest import PARTITIONS, RunningRuntime
from tests.streams.events import checkpoint_created, failure, step_completed

pytestmark = pytest.mark.integration


@pytest.fixture
def recovery_factory(
    config_factory: Callable[..., ProcessorConfig], runtime_factory: Callable[..., RunningRuntime]
) -> Callable[..., RunningRuntime]:
    """Starts a recovery processor on this test's topics."""

    def start(settings: RecoverySettings | None = None) -> RunningRuntime:
        return runtime_factory(RecoveryProcessor(settings), config_factory("recovery"))

    return start


def _plans(read_events: Callable[..., list[dict[str, Any]]], count: int) -> list[dict[str, Any]]:
    events = read_events(
        "failures", count=count, where=lambda e: e["event_type"] == "RecoveryPlanned", settle_s=1.0
    )
    return [e["payload"] for e in events]


def test_a_failing_step_is_retried_with_backoff_then_rolled_back(
    recovery_factory: Callable[..., RunningRuntime],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    run = uuid.uuid4()
    checkpoint = str(uuid.uuid4())
    recovery_factory(RecoverySettings(max_retries=2, backoff_ms=100))

    publish(checkpoint_created(run, checkpoint))
    # Checkpoints and failures are on different topics, which Kafka does not order against
    # each other: like the worker, each failure names the checkpoint its attempt started from.
    started_from = {"checkpoint_id": checkpoint}
    publish(
        *(
            failure(run, message=f"connection reset by peer (attempt {n})", details=started_from)
            for n in (1, 2, 3)
        )
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
    recovery_factory: Callable[..., RunningRuntime],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
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
    recovery_factory: Callable[..., RunningRuntime],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
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


def _run_plans(
    read_events: Callable[..., list[dict[str, Any]]], run: uuid.UUID, count: int
) -> list[dict[str, Any]]:
    events = read_events(
        "failures",
        count=count,
        where=lambda e: (
            e["event_type"] == "RecoveryPlanned" and str(e["payload"]["execution_id"]) == str(run)
        ),
    )
    return sorted((e["payload"] for e in events), key=lambda p: p["attempt"])


def _wait_for_outcome(
    kafka: KafkaSettings, topic: str, run: uuid.UUID, timeout_s: float = 30.0
) -> dict[str, Any]:
    """The outcome record stage 1 forwarded for ``run`` (read committed from the internal topic)."""
    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": f"reader-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for message in consumer.consume(500, 0.3):
                if message.error() is None:
                    record: dict[str, Any] = json.loads(message.value() or b"{}")
                    if record.get("type") == "outcome" and record["execution_id"] == str(run):
                        return record
    finally:
        consumer.close()
    raise AssertionError(f"no outcome for {run} on {topic}")


def test_the_planner_learns_which_action_fixes_a_signature_and_keeps_it_after_a_restart(
    recovery_factory: Callable[..., RunningRuntime],
    runtime_factory: Callable[..., RunningRuntime],
    config_factory: Callable[..., ProcessorConfig],
    kafka: KafkaSettings,
    tmp_path: Path,
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    # Retrying never fixes this failure; handing the step to the fallback agent always does.
    settings = RecoverySettings(
        max_retries=3, backoff_ms=10, fallback_agent="careful-writer", explore_every=0
    )
    details = {"workflow_id": "wf-learning"}
    internal = config_factory("recovery").internal_topic(BY_SIGNATURE)
    first = recovery_factory(settings)

    def run_until_fixed() -> list[dict[str, Any]]:
        run = uuid.uuid4()
        plans: list[dict[str, Any]] = []
        while True:
            publish(failure(run, message="search tool crashed: HTTP 500", details=details))
            plans = _run_plans(read_events, run, len(plans) + 1)
            if plans[-1]["plan"] == "fallback":
                publish(step_completed(run, step_id="plan", cost_usd=0.02))
                outcome = _wait_for_outcome(kafka, internal, run)
                assert outcome["success"] and outcome["cause"] == "StepCompleted"
                return plans
            assert len(plans) < 6, plans

    one, two, three = run_until_fixed(), run_until_fixed(), run_until_fixed()

    assert [(p["plan"], p["decided_by"]) for p in one] == [
        ("retry", "rule"),
        ("retry", "rule"),
        ("fallback", "explore"),  # retry fixed 0 of 2: try what is not known yet
    ]
    assert [(p["plan"], p["decided_by"]) for p in two] == [("fallback", "explore")]
    assert [(p["plan"], p["decided_by"], p["default_action_key"]) for p in three] == [
        ("fallback", "learned", "retry")
    ]
    assert three[0]["action_key"] == "fallback:careful-writer"
    assert "fixed 2 of 2" in three[0]["reason"]

    # A new instance (a fresh local state folder) rebuilds what was learned from the changelog.
    first.stop()
    runtime_factory(
        RecoveryProcessor(settings), config_factory("recovery", state_dir=tmp_path / "restarted")
    )
    four = run_until_fixed()

    assert [(p["plan"], p["decided_by"]) for p in four] == [("fallback", "learned")]
    stats = {s["action_key"]: s for s in four[0]["statistics"]}
    assert (stats["retry"]["tries"], stats["retry"]["successes"]) == (2, 0)
    fallback = stats["fallback:careful-writer"]
    assert (fallback["tries"], fallback["successes"]) == (3, 3)
    assert fallback["cost_usd"] == pytest.approx(0.06)
    assert fallback["score"] == pytest.approx(0.8)
