"""Concurrent commands on one aggregate: optimistic concurrency and racing idempotency keys.

A barrier inside ``repository.get`` makes both threads load the same version before either
saves, so the race is certain rather than likely. Runs on the in-memory store and on PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID, uuid4

import pytest

from omium.commands import CommandResult, ConflictError, ExecutionsApplication
from tests.commands.helpers import event_names


@pytest.fixture
def executions(app_factory: Callable[..., Any]) -> ExecutionsApplication:
    return app_factory(ExecutionsApplication)  # type: ignore[no-any-return]


def load_in_lockstep(app: ExecutionsApplication, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next two loads wait for each other, so both see the same version."""
    barrier = threading.Barrier(2, timeout=10)
    original = app.repository.get

    def get(aggregate_id: UUID, **kwargs: Any) -> Any:
        aggregate = original(aggregate_id, **kwargs)
        barrier.wait()
        return aggregate

    monkeypatch.setattr(app.repository, "get", get)


def race(*commands: Callable[[], CommandResult]) -> list[CommandResult | Exception]:
    def run(command: Callable[[], CommandResult]) -> CommandResult | Exception:
        try:
            return command()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(run, commands))


def running_step(app: ExecutionsApplication, tenant: str) -> UUID:
    run = app.start_execution(tenant, workflow_id=uuid4(), workflow_version=1).aggregate_id
    app.schedule_step(tenant, run, step_id="a")
    app.start_step(tenant, run, step_id="a")
    return run


def test_two_workers_completing_the_same_step_one_wins_one_conflicts(
    executions: ExecutionsApplication,
    tenant_factory: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant = tenant_factory()
    run = running_step(executions, tenant)
    load_in_lockstep(executions, monkeypatch)

    outcomes = race(
        lambda: executions.complete_step(tenant, run, step_id="a", output={"by": "w1"}),
        lambda: executions.complete_step(tenant, run, step_id="a", output={"by": "w2"}),
    )

    wins = [o for o in outcomes if isinstance(o, CommandResult)]
    conflicts = [o for o in outcomes if isinstance(o, ConflictError)]
    assert (len(wins), len(conflicts)) == (1, 1), outcomes
    assert conflicts[0].aggregate_id == run
    assert conflicts[0].expected_version == wins[0].version - 1
    monkeypatch.undo()
    step = executions.get_execution(tenant, run).steps[0]
    assert step.output in ({"by": "w1"}, {"by": "w2"})
    assert event_names(executions, run).count("StepCompleted") == 1


def test_the_same_key_sent_twice_at_once_writes_once_and_answers_both(
    executions: ExecutionsApplication,
    tenant_factory: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant = tenant_factory()
    run = running_step(executions, tenant)
    load_in_lockstep(executions, monkeypatch)

    def complete() -> CommandResult:
        return executions.complete_step(tenant, run, step_id="a", idempotency_key="done-a")

    first, second = race(complete, complete)

    assert isinstance(first, CommandResult), first
    assert isinstance(second, CommandResult), second
    assert (first.version, first.events) == (second.version, second.events)
    assert sorted([first.replayed, second.replayed]) == [False, True]
    monkeypatch.undo()
    assert event_names(executions, run).count("StepCompleted") == 1


def test_commands_on_different_runs_do_not_conflict(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    runs = [running_step(executions, tenant) for _ in range(4)]

    outcomes = race(*[(lambda r=r: executions.complete_step(tenant, r, step_id="a")) for r in runs])

    assert all(isinstance(o, CommandResult) for o in outcomes), outcomes
