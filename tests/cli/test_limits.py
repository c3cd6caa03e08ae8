"""Tenant concurrency limits on the live gateway with the real processors, under load.

Limits are set with ``omium limits set``; the orchestrator's admission stage enforces them. What
ran when is read afterwards from the runs' timelines (the events' own times), so the checks are
about order and overlap, never about how long anything took.
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from omium.sdk.client import Client, NotFoundError
from tests.cli.fixtures import AGENT, Cli

pytestmark = pytest.mark.integration

TIMEOUT_S = 180.0


def workflow(client: Client, name: str, *, steps: int, parallel: bool = False) -> str:
    definition: dict[str, Any] = {
        "name": name,
        "agents": {"echo": AGENT},
        "steps": [
            {
                "id": f"s{i}",
                "agent": "echo",
                **({"needs": []} if parallel else ({"needs": [f"s{i - 1}"]} if i else {})),
            }
            for i in range(steps)
        ],
    }
    return str(client.register_workflow(definition).workflow_id)


def start(client: Client, workflow_id: str, sleep_s: float) -> str:
    run = client.start_execution(workflow_id, workflow_version=1, input={"sleep_s": sleep_s})
    return str(run.execution_id)


def events(client: Client, run: str) -> list[Any]:
    """The run's timeline once it holds the run's end."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            found = client.get_timeline(run, limit=500).events
        except NotFoundError:  # not in the read model yet
            found = []
        if any(e.event_type == "ExecutionCompleted" for e in found):
            return found
        assert time.monotonic() < deadline, [e.event_type for e in found]
        time.sleep(0.3)


def run_span(client: Client, run: str) -> tuple[datetime, datetime]:
    """From the run's first step start to its completion."""
    found = events(client, run)
    first = min(e.occurred_at for e in found if e.event_type == "StepStarted")
    end = next(e.occurred_at for e in found if e.event_type == "ExecutionCompleted")
    return first, end


def step_spans(client: Client, run: str) -> list[tuple[datetime, datetime]]:
    """Each step's start and completion."""
    found = events(client, run)
    started = {e.step_id: e.occurred_at for e in found if e.event_type == "StepStarted"}
    return [(started[e.step_id], e.occurred_at) for e in found if e.event_type == "StepCompleted"]


def most_at_once(spans: list[tuple[datetime, datetime]]) -> int:
    """The most spans open at one moment (an end before a start at the same time)."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    peak = now = 0
    for _, change in edges:
        now += change
        peak = max(peak, now)
    return peak


def wait_for(client: Client, run: str, check: Any) -> Any:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        view = client.get_execution(run)
        if check(view):
            return view
        assert time.monotonic() < deadline, (view.state, view.steps)
        time.sleep(0.2)


def test_runs_over_the_limit_wait_in_line_in_order(cli: Cli, operator_client: Client) -> None:
    shown = cli.json("limits", "set", "--runs", "2")
    assert (shown["max_running_executions"], shown["max_concurrent_steps"]) == (2, None)
    wid = workflow(operator_client, "lim-runs", steps=2)
    runs = [start(operator_client, wid, 0.3) for _ in range(8)]

    spans = [run_span(operator_client, run) for run in runs]
    assert most_at_once(spans) <= 2
    assert most_at_once(spans) == 2  # the limit is used, not just respected
    # Admitted in the order they were started: a later run never starts before an earlier one
    # (up to the moment two runs admitted together take to reach their workers; a run let in
    # out of turn would start a whole run, 0.6 s, before the one it jumped).
    starts = [start for start, _ in spans]
    for earlier, later in itertools.combinations(starts, 2):
        assert later - earlier > -timedelta(seconds=0.25), (earlier, later)
    assert cli.json("limits", "show")["max_running_executions"] == 2


def test_raising_the_limit_starts_waiting_runs_at_once(cli: Cli, operator_client: Client) -> None:
    cli.ok("limits", "set", "--runs", "1")
    wid = workflow(operator_client, "lim-raise", steps=3)
    long = start(operator_client, wid, 2.0)
    wait_for(operator_client, long, lambda v: any(s.status == "running" for s in v.steps))
    waiting = [start(operator_client, wid, 0.2) for _ in range(3)]
    time.sleep(1.0)  # time enough for any of them to be (wrongly) scheduled
    for run in waiting:
        view = operator_client.get_execution(run)
        assert (view.state, view.steps) == ("pending", []), view  # queued: nothing scheduled
    cli.ok("limits", "set", "--runs", "4")

    long_start, long_end = run_span(operator_client, long)
    for run in waiting:
        begun, _ = run_span(operator_client, run)
        assert long_start < begun < long_end  # started while the long run still ran


def test_steps_over_the_limit_wait_and_lowering_stops_nothing(
    cli: Cli, operator_client: Client
) -> None:
    wid = workflow(operator_client, "lim-steps", steps=6, parallel=True)
    cli.ok("limits", "set", "--steps", "2")
    runs = [start(operator_client, wid, 0.4) for _ in range(3)]
    spans = [span for run in runs for span in step_spans(operator_client, run)]
    assert len(spans) == 18
    assert most_at_once(spans) == 2

    # Three steps running; the limit goes down to 1: they all finish, the next wait for it.
    # (Steps long enough for the cut to reach the orchestrator before the first one ends.)
    cli.ok("limits", "set", "--steps", "3")
    run = start(operator_client, wid, 3.0)
    wait_for(operator_client, run, lambda v: sum(s.status == "running" for s in v.steps) == 3)
    cli.ok("limits", "set", "--steps", "1")
    done = operator_client.wait_for_completion(run, timeout=TIMEOUT_S)
    assert done.state == "completed", done.outcome
    spans = step_spans(operator_client, run)
    assert len(spans) == 6 and most_at_once(spans) == 3
    later = sorted(spans)[3:]  # admitted after the cut: one at a time
    assert most_at_once(later) == 1
