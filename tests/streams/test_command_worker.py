"""The command worker on real Kafka and PostgreSQL: applied once, refusals recorded."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omium.commands import CommandApplications
from omium.streams.base import ProcessorConfig, command_event
from omium.streams.command_worker import CommandWorker
from omium.streams.consensus import ConsensusProcessor
from tests.streams.conftest import RunningRuntime
from tests.streams.events import TENANT, round_opened, vote

pytestmark = pytest.mark.integration


def _command(command: str, target: uuid.UUID, command_id: uuid.UUID, **args: Any) -> dict[str, Any]:
    return command_event(
        command,
        command_id=command_id,
        tenant_id=TENANT,
        target_id=target,
        args=args,
        issued_by="tests",
        occurred_at=datetime.now(UTC),
    )


def _records(read_events: Callable[..., list[dict[str, Any]]], count: int) -> list[dict[str, Any]]:
    events = read_events("audit", count=count, settle_s=1.0)
    return [e["payload"] for e in events]


def test_a_command_delivered_twice_is_applied_once(
    apps_factory: Callable[[], CommandApplications],
    config_factory: Callable[..., ProcessorConfig],
    runtime_factory: Callable[..., RunningRuntime],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    apps = apps_factory()
    started = apps.executions.start_execution(TENANT, workflow_id=uuid.uuid4(), workflow_version=1)
    execution = started.aggregate_id
    runtime_factory(CommandWorker(apps_factory()), config_factory("commands"))
    halt = _command("executions.halt_execution", execution, uuid.uuid4(), reason="policy said so")

    publish(halt, halt)

    records = _records(read_events, 2)
    assert [r["result"] for r in records] == ["accepted", "accepted"]
    assert len({r["request_id"] for r in records}) == 1  # one command, recorded with one id
    view = apps.executions.get_execution(TENANT, execution)
    assert view.state == "halted"
    assert view.version == started.version + 1  # ExecutionHalted written once


def test_refused_commands_are_recorded_with_their_reason(
    apps_factory: Callable[[], CommandApplications],
    config_factory: Callable[..., ProcessorConfig],
    runtime_factory: Callable[..., RunningRuntime],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    runtime_factory(CommandWorker(apps_factory()), config_factory("commands"))

    publish(
        _command("executions.halt_execution", uuid.uuid4(), uuid.uuid4(), reason="x"),
        _command("executions.delete_everything", uuid.uuid4(), uuid.uuid4()),
        _command("executions.halt_execution", uuid.uuid4(), uuid.uuid4(), colour="red"),
    )

    records = {r["command"] + str(r["status_code"]): r for r in _records(read_events, 3)}
    assert set(records) == {
        "executions.halt_execution404",
        "executions.delete_everything422",
        "executions.halt_execution422",
    }
    assert all(r["result"] == "refused" and r["reason"] for r in records.values())
    assert "unknown command" in records["executions.delete_everything422"]["reason"]


def test_a_consensus_decision_is_applied_to_the_round_aggregate(
    apps_factory: Callable[[], CommandApplications],
    config_factory: Callable[..., ProcessorConfig],
    runtime_factory: Callable[..., RunningRuntime],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    apps = apps_factory()
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    opened = apps.consensus.open_round(
        TENANT, participants=["a", "b", "c"], rule="majority", deadline=deadline
    )
    round_id = opened.aggregate_id
    apps.consensus.cast_vote(TENANT, round_id, participant="a", choice="yes")
    apps.consensus.cast_vote(TENANT, round_id, participant="b", choice="yes")
    runtime_factory(ConsensusProcessor(), config_factory("consensus"))
    runtime_factory(CommandWorker(apps_factory()), config_factory("commands"))

    # The relay would publish the stored events; these carry the same round, voters and votes.
    publish(
        round_opened(round_id, ["a", "b", "c"]),
        vote(round_id, "a", "yes"),
        vote(round_id, "b", "yes"),
    )

    (record,) = _records(read_events, 1)
    assert (record["command"], record["result"]) == ("consensus.decide_round", "accepted")
    view = apps.consensus.get_round(TENANT, round_id)
    assert (view.status, view.decision) == ("reached", "yes")
    assert json.loads(json.dumps(view.tally)) == {"yes": 2.0}
