"""The transactional runtime on real Kafka: Avro in, decision out, state kept in a changelog."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from omium.kernel.settings import KafkaSettings
from omium.streams.base import Context, Processor, ProcessorConfig, derived_id, output_event
from omium.testing.samples import sample_event
from tests.streams.conftest import RunningRuntime

pytestmark = pytest.mark.integration


class CountingPlanner(Processor):
    """Plans a retry per failure, numbering attempts per execution in a table."""

    name = "counting"
    tables = ("attempts",)

    def input_areas(self) -> Sequence[str]:
        return ["failures"]

    def handle(self, ctx: Context) -> None:
        event = ctx.event
        assert event is not None
        if event["event_type"] != "FailureDetected":
            return
        if event["payload"]["message"] == "poison":
            raise ValueError("cannot plan a poisoned failure")
        execution = str(event["payload"]["execution_id"])
        attempt = (ctx.get("attempts", execution) or 0) + 1
        ctx.put("attempts", execution, attempt)
        plan_id = derived_id("test", event["event_id"])
        payload = {
            "plan_id": str(plan_id),
            "failure_id": str(event["payload"]["failure_id"]),
            "execution_id": execution,
            "step_id": None,
            "plan": "retry",
            "reason": "test",
            "attempt": attempt,
            "signature": "sig",
            "similar_failure_count": 0,
            "backoff_ms": None,
            "target_checkpoint_id": None,
            "fallback_agent": None,
            "fallback_model": None,
        }
        ctx.emit(
            output_event(
                "RecoveryPlanned",
                event_id=plan_id,
                tenant_id=event["tenant_id"],
                payload=payload,
                occurred_at=ctx.now,
                causation_id=str(event["event_id"]),
            ),
            key=execution,
        )


def _failure(execution: uuid.UUID, message: str = "boom") -> dict[str, Any]:
    event = sample_event("FailureDetected", aggregate_id=execution, event_id=uuid.uuid4())
    payload = {**event["payload"], "execution_id": execution, "failure_id": uuid.uuid4()}
    payload["message"] = message
    return sample_event(
        "FailureDetected", aggregate_id=execution, payload=payload, event_id=uuid.uuid4()
    )


def _plans(read_events: Callable[..., list[dict[str, Any]]], count: int) -> list[int]:
    events = read_events(
        "failures", count=count, where=lambda e: e["event_type"] == "RecoveryPlanned"
    )
    return sorted(e["payload"]["attempt"] for e in events)


def test_an_avro_event_in_gives_a_decision_event_out_in_a_transaction(
    config_factory: Callable[..., ProcessorConfig],
    runtime_factory: Callable[..., RunningRuntime],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    execution = uuid.uuid4()
    running = runtime_factory(CountingPlanner(), config_factory("counting"))

    publish(_failure(execution), _failure(execution))

    assert _plans(read_events, 2) == [1, 2]
    running.stop()
    assert running.runtime.stats["transactions"] >= 1


def test_state_survives_a_restart_through_the_changelog(
    config_factory: Callable[..., ProcessorConfig],
    runtime_factory: Callable[..., RunningRuntime],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    execution = uuid.uuid4()
    first = runtime_factory(CountingPlanner(), config_factory("counting"))
    publish(_failure(execution), _failure(execution))
    assert _plans(read_events, 2) == [1, 2]
    first.stop()

    # A fresh instance with an empty state folder rebuilds the table from the changelog.
    runtime_factory(CountingPlanner(), config_factory("counting", instance_id="i1"))
    publish(_failure(execution))

    assert _plans(read_events, 3) == [1, 2, 3]


def test_an_event_whose_handler_raises_is_dead_lettered_and_the_rest_go_on(
    config_factory: Callable[..., ProcessorConfig],
    runtime_factory: Callable[..., RunningRuntime],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
    kafka: KafkaSettings,
) -> None:
    execution = uuid.uuid4()
    runtime_factory(CountingPlanner(), config_factory("counting"))

    publish(_failure(execution, "poison"), _failure(execution))

    assert _plans(read_events, 1) == [1]
    letters = read_events("dlq", count=1)
    assert letters[0]["payload"]["message"] == "poison"
