"""``omium workflows|runs|approvals`` against the real gateway, with runs really running."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from omium.sdk.client import Client
from tests.cli.fixtures import Cli, chain_workflow

pytestmark = pytest.mark.integration


def write_workflow(tmp_path: Path, definition: dict[str, Any]) -> Path:
    file = tmp_path / f"{definition['name']}.yaml"
    file.write_text(yaml.safe_dump(definition, sort_keys=False), encoding="utf-8")
    return file


def manual_run(client: Client, *steps: str) -> str:
    """A run of a bare definition (not an Omium workflow file: nobody but the test drives it)."""
    definition = {"steps": [{"id": step, "agent": f"agents.{step}"} for step in steps]}
    workflow = client.register_workflow(definition, name=f"manual-{uuid.uuid4().hex[:8]}")
    return client.start_execution(workflow.workflow_id, workflow_version=1).execution_id


def test_workflows_apply_list_and_show(cli: Cli, tmp_path: Path) -> None:
    definition = chain_workflow("cli-apply")
    file = write_workflow(tmp_path, definition)

    first = cli.json("workflows", "apply", str(file))
    assert first["action"] == "registered" and first["definition_version"] == 1
    again = cli.json("workflows", "apply", str(file))
    assert again == {**first, "action": "unchanged"}
    definition["description"] = "now with a description"
    write_workflow(tmp_path, definition)
    changed = cli.ok("workflows", "apply", str(file)).stdout
    assert f"published workflow cli-apply ({first['workflow_id']}), version 2" in changed

    listed = cli.json("workflows", "list")
    assert [(w["name"], w["latest_version"]) for w in listed] == [("cli-apply", 2)]
    table = cli.ok("workflows", "list").stdout
    assert first["workflow_id"] in table and "cli-apply" in table

    shown = cli.ok("workflows", "show", "cli-apply").stdout
    assert "2 of 2" in shown and "now with a description" in shown
    assert "plan" in shown and "act" in shown
    old = cli.json("workflows", "show", first["workflow_id"], "--version", "1")
    assert old["definition_version"] == 1 and "description" not in old["definition"]

    assert "no workflow named 'nope'" in cli.fails("workflows", "show", "nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsteps: [{id: a, agent: missing}]\n", encoding="utf-8")
    assert "invalid workflow" in cli.fails("workflows", "apply", str(bad))


def test_a_run_started_waited_for_listed_and_followed(cli: Cli, tmp_path: Path) -> None:
    cli.ok("workflows", "apply", str(write_workflow(tmp_path, chain_workflow("cli-run"))))

    run = cli.json(
        "runs", "start", "cli-run", "--input", '{"sleep_s": 0.1}', "--wait", "--timeout", "90"
    )
    assert run["state"] == "completed", run
    assert [s["status"] for s in run["steps"]] == ["completed"] * 3
    assert run["outcome"]["output"]["report"]["seen"] == ["plan", "act", "report"]
    run_id = run["execution_id"]

    shown = cli.ok("runs", "show", run_id).stdout
    assert "completed" in shown and "checkpoints" in shown and "report" in shown

    page = cli.eventually(
        "runs",
        "list",
        "--workflow",
        "cli-run",
        until=lambda page: any(
            r["execution_id"] == run_id and r["status"] == "completed" for r in page["items"]
        ),
    )
    assert [r["execution_id"] for r in page["items"]] == [run_id]
    assert run_id in cli.ok("runs", "list", "--status", "completed").stdout

    timeline = cli.eventually(
        "runs",
        "timeline",
        run_id,
        until=lambda t: t["events"] and t["events"][-1]["event_type"] == "ExecutionCompleted",
    )
    types = [event["event_type"] for event in timeline["events"]]
    assert types[0] == "ExecutionStarted" and types.count("StepCompleted") == 3
    assert "ExecutionCompleted" in cli.ok("runs", "timeline", run_id).stdout

    # Following an ended run replays its stream and returns after its final event.
    followed = cli.ok("runs", "timeline", run_id, "--follow", "--output", "json").stdout
    lines = [line for line in followed.splitlines() if line.strip()]
    assert '"ExecutionStarted"' in lines[0] and '"ExecutionCompleted"' in lines[-1]
    assert "StepCompleted" in cli.ok("runs", "timeline", run_id, "--follow").stdout


def test_start_without_wait_and_a_failing_wait(cli: Cli, tmp_path: Path) -> None:
    cli.ok("workflows", "apply", str(write_workflow(tmp_path, chain_workflow("cli-slow"))))
    started = cli.json("runs", "start", "cli-slow", "--input", '{"sleep_s": 2}')
    assert started["events"] == ["ExecutionStarted"]
    message = cli.fails(
        "runs", "start", "cli-slow", "--input", '{"sleep_s": 2}', "--wait", "--timeout", "0.5"
    )
    assert "timed out" in message and "is still" in message
    # A run that ends other than completed makes --wait exit 1, after printing the run.
    cancelled = cli.json("runs", "cancel", started["execution_id"], "--reason", "enough")
    assert cancelled["events"] == ["ExecutionCancelled"]
    assert "--input must be a JSON object" in cli.fails(
        "runs", "start", "cli-slow", "--input", "[1]", code=2
    )


def test_operating_runs(cli: Cli, client_factory: Callable[..., Client]) -> None:
    omium = client_factory("developer")

    # cancel (a developer may), halt (an operator must)
    run = manual_run(omium, "a")
    denied = cli.fails("runs", "halt", run, "--reason", "stop", role="developer")
    assert (
        "403" in denied and "required_role=operator" in denied and "actual_role=developer" in denied
    )
    assert "halted run" in cli.ok("runs", "halt", run, "--reason", "budget").stdout
    refused = cli.fails("runs", "cancel", run, role="developer")
    assert "409" in refused and "current_state=halted" in refused
    other = manual_run(omium, "a")
    assert "cancelled run" in cli.ok("runs", "cancel", other, role="developer").stdout
    assert cli.json("runs", "show", other)["outcome"]["requested_by"] == "olga"

    # rollback to a checkpoint
    run = manual_run(omium, "a", "b")
    omium.schedule_step(run, "a")
    omium.start_step(run, "a")
    checkpoint = omium.create_checkpoint(run, "a", position="after", state=b'{"n": 1}')
    omium.complete_step(run, "a", output={"n": 1})
    rolled = cli.json("runs", "rollback", run, checkpoint.checkpoint_id, "--reason", "redo")
    assert rolled["events"] == ["ExecutionRolledBack"]
    unknown = cli.fails("runs", "rollback", run, "nope")
    assert "422" in unknown and "reason=unknown_checkpoint" in unknown

    # approvals: listed, then approved (the only pending one) and rejected (named)
    waiting = manual_run(omium, "x", "y")
    for step in ("x", "y"):
        omium.schedule_step(waiting, step)
    deadline = datetime.now(UTC) + timedelta(hours=1)
    omium.request_approval(waiting, "x", deadline=deadline, default_action="reject", prompt="Go?")
    pending = cli.eventually(
        "approvals", "list", until=lambda items: any(i["execution_id"] == waiting for i in items)
    )
    assert [(i["step_id"], i["prompt"], i["default_action"]) for i in pending] == [
        ("x", "Go?", "reject")
    ]
    listed = cli.ok("approvals", "list").stdout
    assert waiting in listed and "59m" in listed
    omium.request_approval(waiting, "y", deadline=deadline, default_action="approve")
    ambiguous = cli.fails("runs", "approve", waiting)
    assert "2 pending approvals (x, y)" in ambiguous and "reason=ambiguous_step" in ambiguous
    cli.ok("runs", "approve", waiting, "x", "--comment", "fine", subject="bob")
    assert "rejected step y" in cli.ok("runs", "reject", waiting).stdout
    approvals = {a["step_id"]: a for a in cli.json("runs", "show", waiting)["approvals"]}
    assert approvals["x"]["status"] == "granted" and approvals["x"]["decided_by"] == "bob"
    assert approvals["y"]["status"] == "rejected" and approvals["y"]["decided_by"] == "olga"
    none_left = cli.fails("runs", "approve", waiting)
    assert "has no pending approval" in none_left


def test_errors_and_configuration(cli: Cli, tmp_path: Path) -> None:
    missing = str(uuid.uuid4())
    assert "404" in cli.fails("runs", "show", missing)
    unauthenticated = cli.fails("runs", "list", env={"OMIUM_TOKEN": "not-a-jwt"})
    assert "401" in unauthenticated and "reason=invalid_token" in unauthenticated
    malformed = cli.fails("runs", "show", "not-a-uuid")
    assert "422" in malformed and "execution_id" in malformed
    gone = cli.fails(
        "workflows", "list", "--url", "http://127.0.0.1:9", env={"OMIUM_TIMEOUT_S": "1"}
    )
    assert "cannot reach the gateway" in gone

    # A profile file; the environment wins over it, --url over both.
    token = cli.gateway.token("viewer", tenant=cli.tenant)
    config = tmp_path / "client.toml"
    config.write_text(
        f'[profile.ops]\nbase_url = "{cli.gateway.url}"\ntoken = "{token}"\n', encoding="utf-8"
    )
    profile_env = {"OMIUM_BASE_URL": "", "OMIUM_TOKEN": ""}
    assert (
        cli.json("workflows", "list", "--profile", "ops", "--config", str(config), env=profile_env)
        == []
    )
    assert "has no [profile.prod]" in cli.fails(
        "workflows", "list", "--profile", "prod", "--config", str(config), code=2
    )
    both = cli.fails("workflows", "list", env={"OMIUM_API_KEY": "omk_x"}, code=2)
    assert "either token or api_key" in both


def test_who_may_decide_and_decisions_after_the_deadline(
    cli: Cli, client_factory: Callable[..., Client]
) -> None:
    omium = client_factory("developer")
    run = manual_run(omium, "named", "by_role", "late")
    for step in ("named", "by_role", "late"):
        omium.schedule_step(run, step)
    soon = datetime.now(UTC) + timedelta(hours=1)
    omium.request_approval(run, "named", deadline=soon, default_action="reject", approvers=["bob"])
    omium.request_approval(
        run, "by_role", deadline=soon, default_action="reject", approver_role="admin"
    )
    late = datetime.now(UTC) + timedelta(seconds=2)
    omium.request_approval(run, "late", deadline=late, default_action="approve")

    listed = cli.eventually(
        "approvals", "list", until=lambda items: sum(i["execution_id"] == run for i in items) == 3
    )
    assert {i["step_id"]: i["approvers"] for i in listed}["named"] == ["bob"]
    # Wide enough that no cell of the "who decides" column folds over two lines.
    table = cli.ok("approvals", "list", env={"COLUMNS": "400"}).stdout
    assert "role admin+" in table and "any operator" in table

    refused = cli.fails("runs", "approve", run, "named")  # as olga
    assert "422" in refused and "reason=not_an_approver" in refused and "bob" in refused
    cli.ok("runs", "approve", run, "named", subject="bob")
    below = cli.fails("runs", "reject", run, "by_role")  # an operator
    assert "reason=not_an_approver" in below and "needs a decider with role admin" in below
    cli.ok("runs", "reject", run, "by_role", role="admin")

    time.sleep(max(0.0, (late - datetime.now(UTC)).total_seconds()) + 0.2)
    too_late = cli.fails("runs", "approve", run, "late")
    if "reason=approval_deadline_passed" in too_late:  # the default is not applied yet
        assert "422" in too_late and "its default action (approve) applies" in too_late
    else:  # the approvals processor was quicker: nothing is pending any more
        assert "409" in too_late or "no pending approval" in too_late, too_late
    shown = cli.eventually(
        "runs",
        "show",
        run,
        until=lambda r: {a["step_id"]: a for a in r["approvals"]}["late"]["status"] != "pending",
    )
    approvals = {a["step_id"]: a for a in shown["approvals"]}
    assert approvals["named"]["decided_by"] == "bob" and approvals["named"]["approvers"] == ["bob"]
    assert approvals["by_role"]["status"] == "rejected"
    assert (approvals["late"]["status"], approvals["late"]["decided_by"]) == (
        "granted",
        "system:deadline",
    )
