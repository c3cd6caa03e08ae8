"""What a run's steps used and the budget it started with reach the Avro events (issue 15).

``StepCompleted`` carries the step's LLM tokens and cost as the worker recorded them, and
``ExecutionStarted`` the run's budget; events stored before either was recorded map as before
(zeros, no budget). Pure mapping on the in-memory store.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest

from omium.commands import CommandApplications, InvalidCommandError, event_store_env
from omium.commands.relay import START, BatchEncoder, EventEncoder, sources_of
from omium.kernel.serde import AvroSerde, default_catalog
from omium.kernel.settings import OmiumSettings

SERDE = AvroSerde(default_catalog())


@pytest.fixture
def apps(settings: OmiumSettings) -> Iterator[CommandApplications]:
    with CommandApplications.create(event_store_env(settings, backend="popo")) as built:
        yield built


def run_events(apps: CommandApplications, run: Any) -> dict[str, list[dict[str, Any]]]:
    batches = BatchEncoder(EventEncoder(default_catalog()), topic_prefix="unit", schema="s")
    batch = batches.encode([(s, s.read(START, 10_000)) for s in sources_of(apps)], {})
    found: dict[str, list[dict[str, Any]]] = {}
    for message in batch.messages:
        if message.topic.endswith(".dlq"):
            continue
        event = SERDE.decode(message.value)
        if event["aggregate_id"] == str(run):
            found.setdefault(event["event_type"], []).append(event["payload"])
    return found


def test_step_usage_and_the_run_budget_reach_the_events(apps: CommandApplications) -> None:
    ex, t = apps.executions, f"tenant-{uuid4().hex[:8]}"
    run = ex.start_execution(
        t, workflow_id=uuid4(), workflow_version=1, max_cost_usd=0.5, max_tokens=20_000
    ).aggregate_id
    ex.schedule_step(t, run, step_id="a")
    ex.start_step(t, run, step_id="a")
    usage = {"tokens_in": 120, "tokens_out": 30, "cost_usd": 0.0042, "model": "gpt-4o-mini"}
    ex.complete_step(t, run, step_id="a", output={"x": 1}, usage=usage)
    ex.schedule_step(t, run, step_id="b")
    ex.start_step(t, run, step_id="b")
    # The pipelined path records the same usage in its one save.
    ex.advance_step(t, run, step_id="b", output={}, usage={"tokens_in": 7, "tokens_out": 3})

    events = run_events(apps, run)
    [started] = events["ExecutionStarted"]
    assert (started["max_cost_usd"], started["max_tokens"]) == (0.5, 20_000)
    first, second = events["StepCompleted"]
    assert (first["tokens_in"], first["tokens_out"], first["model"]) == (120, 30, "gpt-4o-mini")
    assert first["cost_usd"] == pytest.approx(0.0042)
    assert (second["tokens_in"], second["tokens_out"], second["cost_usd"]) == (7, 3, 0.0)
    assert second["model"] is None


def test_runs_and_steps_without_usage_map_as_before(apps: CommandApplications) -> None:
    ex, t = apps.executions, f"tenant-{uuid4().hex[:8]}"
    run = ex.start_execution(t, workflow_id=uuid4(), workflow_version=1).aggregate_id
    ex.schedule_step(t, run, step_id="a")
    ex.start_step(t, run, step_id="a")
    ex.complete_step(t, run, step_id="a", output={})
    events = run_events(apps, run)
    [started] = events["ExecutionStarted"]
    assert (started["max_cost_usd"], started["max_tokens"]) == (None, None)
    [completed] = events["StepCompleted"]
    assert (completed["tokens_in"], completed["tokens_out"], completed["cost_usd"]) == (0, 0, 0.0)


@pytest.mark.parametrize(
    ("usage", "reason"),
    [
        ({"tokens_in": -1}, "invalid_tokens_in"),
        ({"tokens_out": 1.5}, "invalid_tokens_out"),
        ({"cost_usd": float("nan")}, "invalid_cost_usd"),
        ({"cost_usd": True}, "invalid_cost_usd"),
        ({"model": " "}, "invalid_model"),
        ({"tokens": 3}, "invalid_usage"),
    ],
)
def test_bad_usage_is_refused(
    apps: CommandApplications, usage: dict[str, Any], reason: str
) -> None:
    ex, t = apps.executions, f"tenant-{uuid4().hex[:8]}"
    run = ex.start_execution(t, workflow_id=uuid4(), workflow_version=1).aggregate_id
    ex.schedule_step(t, run, step_id="a")
    ex.start_step(t, run, step_id="a")
    with pytest.raises(InvalidCommandError) as refused:
        ex.complete_step(t, run, step_id="a", output={}, usage=usage)
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    "budget",
    [{"max_tokens": -5}, {"max_tokens": 2.5}, {"max_cost_usd": float("inf")}],
)
def test_a_bad_budget_is_refused(apps: CommandApplications, budget: dict[str, Any]) -> None:
    with pytest.raises(InvalidCommandError):
        apps.executions.start_execution("acme", workflow_id=uuid4(), workflow_version=1, **budget)
