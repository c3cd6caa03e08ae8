"""Forking runs from their checkpoints, end to end: gateway, relay, orchestrator, worker, reads.

The workflow is a chain plan → act → report, checkpointed before and after each step; the agent
appends its step to ``ctx.state["seen"]``, so a step's output shows the state it started from.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from omium.sdk.client import Client, Execution, InvalidRequestError
from tests.cli.fixtures import Cli, chain_workflow

pytestmark = pytest.mark.integration

RUN_TIMEOUT_S = 90.0


def register(client: Client, name: str, steps: tuple[str, ...] = ("plan", "act", "report")) -> str:
    return client.register_workflow(chain_workflow(name, steps)).workflow_id


def run_to_end(client: Client, workflow_id: str, **input: Any) -> Execution:
    started = client.start_execution(workflow_id, workflow_version=1, input=input)
    return client.wait_for_completion(started.execution_id, timeout=RUN_TIMEOUT_S)


def checkpoint(run: Execution, step: str, position: str) -> str:
    found = [c for c in run.checkpoints if c.step_id == step and c.position == position]
    assert found, (step, position, [(c.step_id, c.position) for c in run.checkpoints])
    return max(found, key=lambda c: c.sequence).checkpoint_id


def ran(run: Execution) -> list[str]:
    """The steps that ran in this run (started, i.e. checkpointed before)."""
    return sorted({c.step_id for c in run.checkpoints if c.position == "before"})


def test_forks_from_the_first_a_middle_and_the_last_checkpoint(
    operator_client: Client,
) -> None:
    omium = operator_client
    parent = run_to_end(omium, register(omium, "fork-points"))
    assert parent.state == "completed"
    assert parent.outcome["output"]["report"]["seen"] == ["plan", "act", "report"]

    # The first checkpoint (before plan): everything runs again.
    first = omium.fork_execution(parent.execution_id, checkpoint(parent, "plan", "before"))
    assert first.parent_execution_id == parent.execution_id
    assert first.events == ["ExecutionForked", "CheckpointCreated"]
    run = omium.wait_for_completion(first.execution_id, timeout=RUN_TIMEOUT_S)
    assert run.state == "completed" and ran(run) == ["act", "plan", "report"]
    assert run.outcome["output"]["report"]["seen"] == ["plan", "act", "report"]
    assert run.parent_execution_id == parent.execution_id
    assert run.forked_from_checkpoint_id == first.forked_from_checkpoint_id
    assert run.input == parent.input and run.workflow_version == 1

    # A middle one (after act): plan and act are kept, only report runs, from act's state.
    middle = omium.fork_execution(parent.execution_id, checkpoint(parent, "act", "after"))
    run = omium.wait_for_completion(middle.execution_id, timeout=RUN_TIMEOUT_S)
    assert run.state == "completed" and ran(run) == ["report"]
    assert {s.step_id: s.status for s in run.steps} == dict.fromkeys(
        ("plan", "act", "report"), "completed"
    )
    assert run.outcome["output"]["report"]["seen"] == ["plan", "act", "report"]

    # The same point with an edited state: report starts from it.
    edited = omium.fork_execution(
        parent.execution_id,
        checkpoint(parent, "act", "after"),
        state={"outputs": {}, "data": {"seen": ["edited"], "note": "by hand"}},
    )
    run = omium.wait_for_completion(edited.execution_id, timeout=RUN_TIMEOUT_S)
    assert run.outcome["output"]["report"] == {
        "step": "report",
        "seen": ["edited", "report"],
        "note": "by hand",
    }
    start = omium.get_checkpoint(run.execution_id, edited.checkpoint_id)
    assert json.loads(start.state_bytes() or b"")["data"]["note"] == "by hand"

    # The last one (after report): nothing is left to run; the fork completes as the parent did.
    last = omium.fork_execution(parent.execution_id, checkpoint(parent, "report", "after"))
    run = omium.wait_for_completion(last.execution_id, timeout=RUN_TIMEOUT_S)
    assert run.state == "completed" and ran(run) == []
    assert run.outcome["output"] == parent.outcome["output"]

    # The parent is untouched.
    assert omium.get_execution(parent.execution_id).version == parent.version


def test_a_fork_of_a_fork_and_a_fork_of_a_running_run(
    operator_client: Client,
) -> None:
    omium = operator_client
    workflow = register(omium, "fork-running")
    started = omium.start_execution(workflow, workflow_version=1, input={"sleep_s": 1.0})

    # Fork as soon as the parent has finished plan, while it is still running.
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        parent = omium.get_execution(started.execution_id)
        if any(c.step_id == "plan" and c.position == "after" for c in parent.checkpoints):
            break
        assert time.monotonic() < deadline, parent
        time.sleep(0.1)
    assert parent.state == "running"
    child = omium.fork_execution(parent.execution_id, checkpoint(parent, "plan", "after"))

    # A fork of the fork, from the fork's own first checkpoint (the state it started from).
    grandchild = omium.fork_execution(child.execution_id, child.checkpoint_id)

    runs = {
        name: omium.wait_for_completion(accepted.execution_id, timeout=RUN_TIMEOUT_S)
        for name, accepted in (("parent", started), ("child", child), ("grandchild", grandchild))
    }
    for name, run in runs.items():
        assert run.state == "completed", (name, run.outcome)
        assert run.outcome["output"]["report"]["seen"] == ["plan", "act", "report"], name
    assert ran(runs["parent"]) == ["act", "plan", "report"]
    assert ran(runs["child"]) == ran(runs["grandchild"]) == ["act", "report"]
    assert runs["child"].parent_execution_id == parent.execution_id
    assert runs["grandchild"].parent_execution_id == child.execution_id
    assert runs["grandchild"].forked_from_checkpoint_id == child.checkpoint_id
    # The parent ran as if nothing happened: one attempt per step.
    assert {s.step_id: s.attempts for s in runs["parent"].steps} == dict.fromkeys(
        ("plan", "act", "report"), 1
    )


def test_a_fork_on_another_workflow_version(operator_client: Client) -> None:
    omium = operator_client
    workflow = register(omium, "fork-versions")
    parent = run_to_end(omium, workflow)
    longer = chain_workflow("fork-versions", ("plan", "act", "report", "review"))
    assert omium.publish_workflow_version(workflow, longer).definition_version == 2
    shorter = chain_workflow("fork-versions", ("plan", "report"))
    shorter["steps"][1]["needs"] = ["plan"]
    assert omium.publish_workflow_version(workflow, shorter).definition_version == 3

    forked = omium.fork_execution(
        parent.execution_id, checkpoint(parent, "report", "after"), workflow_version=2
    )
    run = omium.wait_for_completion(forked.execution_id, timeout=RUN_TIMEOUT_S)
    assert run.state == "completed" and run.workflow_version == 2 and ran(run) == ["review"]
    assert run.outcome["output"]["review"]["seen"] == ["plan", "act", "report", "review"]

    with pytest.raises(InvalidRequestError) as refused:
        omium.fork_execution(
            parent.execution_id, checkpoint(parent, "act", "before"), workflow_version=3
        )
    assert refused.value.reason == "steps_not_in_version"
    assert refused.value.extensions["details"] == {"steps": ["act"]}
    with pytest.raises(InvalidRequestError) as unknown:
        omium.fork_execution(parent.execution_id, "no-such-checkpoint")
    assert unknown.value.reason == "unknown_checkpoint"
    with pytest.raises(InvalidRequestError) as missing:
        omium.fork_execution(
            parent.execution_id, checkpoint(parent, "act", "before"), workflow_version=9
        )
    assert missing.value.reason == "unknown_workflow_version"


def test_fork_and_resume_from_the_command_line(cli: Cli, tmp_path: Path) -> None:
    file = tmp_path / "cli-fork.yaml"
    file.write_text(yaml.safe_dump(chain_workflow("cli-fork"), sort_keys=False), "utf-8")
    cli.ok("workflows", "apply", str(file))
    parent = cli.json("runs", "start", "cli-fork", "--wait", "--timeout", "90")

    forked = cli.json("runs", "fork", parent["execution_id"], "last", "--wait", "--timeout", "90")
    assert forked["state"] == "completed"
    assert forked["parent_execution_id"] == parent["execution_id"]
    shown = cli.ok("runs", "show", forked["execution_id"]).stdout
    assert f"run {parent['execution_id']} at checkpoint" in shown
    refused = cli.fails("runs", "fork", parent["execution_id"], "nope")
    assert "422" in refused and "reason=unknown_checkpoint" in refused
    denied = cli.fails("runs", "fork", parent["execution_id"], "first", role="developer")
    assert "403" in denied and "required_role=operator" in denied

    # resume: a halted run goes on in a new run from its last checkpoint.
    slow = cli.json("runs", "start", "cli-fork", "--input", '{"sleep_s": 3}')
    assert "still going" in cli.fails("runs", "resume", slow["execution_id"])
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not cli.json("runs", "show", slow["execution_id"])["checkpoints"]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # Halted while its first step runs (each step sleeps 3 s: the run is far from done).
    cli.ok("runs", "halt", slow["execution_id"], "--reason", "paused by an operator")
    resumed = cli.json("runs", "resume", slow["execution_id"], "--wait", "--timeout", "90")
    assert resumed["state"] == "completed"
    assert resumed["parent_execution_id"] == slow["execution_id"]
    assert resumed["outcome"]["output"]["report"]["seen"] == ["plan", "act", "report"]
    assert "fork it" in cli.fails("runs", "resume", resumed["execution_id"])

    # Lineage in the read model: the runs list and the fork's timeline.
    page = cli.eventually(
        "runs",
        "list",
        "--workflow",
        "cli-fork",
        until=lambda p: any(r["execution_id"] == resumed["execution_id"] for r in p["items"]),
    )
    row = next(r for r in page["items"] if r["execution_id"] == resumed["execution_id"])
    assert row["parent_execution_id"] == slow["execution_id"]
    assert row["trigger"] == "fork" and row["forked_from_checkpoint_id"]
    timeline = cli.json("runs", "timeline", resumed["execution_id"])
    started = timeline["events"][0]
    assert started["event_type"] == "ExecutionStarted"
    assert (
        started["summary"]["payload"]["fork"]["checkpoint_id"] == row["forked_from_checkpoint_id"]
    )
