"""``omium runs ...``: start, inspect and operate runs on a gateway.

``show`` reads the write side (always current); ``list`` and ``timeline`` read the read models,
which follow within moments (a run started a moment ago may not be listed yet).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from omium.cli._app import app
from omium.cli._operator import (
    ConfigOption,
    Output,
    OutputOption,
    ProfileOption,
    UrlOption,
    cell,
    connect,
    console,
    err_console,
    failures,
    fields,
    parse_json_object,
    print_json,
    print_json_line,
    table,
)
from omium.cli._workflows import resolve_workflow
from omium.sdk.client import (
    Client,
    CompletionTimeoutError,
    Execution,
    ExecutionAccepted,
    ExecutionSummary,
    ForkAccepted,
    InvalidRequestError,
    RunEvent,
    TimelineEvent,
)

runs_app = typer.Typer(
    name="runs",
    help="Start, inspect and operate runs (executions) on a gateway.",
    no_args_is_help=True,
)
app.add_typer(runs_app)

RunArgument = Annotated[str, typer.Argument(help="The run's execution id.")]
PendingStepArgument = Annotated[
    str | None, typer.Argument(help="The gated step (default: the run's only pending approval).")
]
ReasonOption = Annotated[str | None, typer.Option("--reason", help="Why (recorded with it).")]
CommentOption = Annotated[
    str | None, typer.Option("--comment", help="A comment recorded with the decision.")
]


# --- start -------------------------------------------------------------------------------------


@runs_app.command("start")
def start_run(
    workflow: Annotated[str, typer.Argument(help="The workflow's id or name.")],
    input: Annotated[
        str | None, typer.Option("--input", help="The run's input as a JSON object.")
    ] = None,
    input_file: Annotated[
        Path | None, typer.Option("--input-file", help="A file holding the input (JSON).")
    ] = None,
    version: Annotated[
        int | None, typer.Option(help="Definition version (default: the latest).", min=1)
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until the run ends, showing its progress.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds --wait waits before giving up.", min=0.1)
    ] = 600.0,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Start a run of a workflow's latest (or the given) version.

    With --wait the command returns once the run ended and exits 1 unless it completed.
    """
    run_input = parse_json_object(input, input_file, "input")
    client = connect(profile, config, url)
    with failures(client):
        found = resolve_workflow(client, workflow, version=version)
        accepted = client.start_execution(
            found.workflow_id, workflow_version=found.definition_version, input=run_input
        )
        if not wait:
            _accepted(accepted, f"started run {accepted.execution_id}", output)
            return
        err_console.print(f"started run {accepted.execution_id}")
        run = wait_with_progress(client, accepted.execution_id, timeout_s=timeout)
        _print_run(run, output)
        if run.state != "completed":
            raise typer.Exit(code=1)


def wait_with_progress(client: Client, execution_id: str, *, timeout_s: float) -> Execution:
    """Poll the run until it ends, with a spinner naming its state and steps on stderr.

    Raises:
        CompletionTimeoutError: It is still going after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    with err_console.status(f"run {execution_id}: starting") as status:
        while True:
            run = client.get_execution(execution_id)
            if run.ended:
                return run
            if time.monotonic() > deadline:
                raise CompletionTimeoutError(execution_id, state=run.state, timeout_s=timeout_s)
            done = sum(step.status == "completed" for step in run.steps)
            current = [step.step_id for step in run.steps if step.status == "running"]
            status.update(
                f"run {execution_id}: {run.state}, {done} step(s) completed"
                + (f", running {', '.join(current)}" if current else "")
            )
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


# --- reading -----------------------------------------------------------------------------------


@runs_app.command("list")
def list_runs(
    status: Annotated[
        str | None,
        typer.Option(help="Only runs in this status (running, failed, waiting_for_approval ...)."),
    ] = None,
    workflow: Annotated[
        str | None, typer.Option(help="Only runs of this workflow (id or name).")
    ] = None,
    agent: Annotated[str | None, typer.Option(help="Only runs in which this agent ran.")] = None,
    limit: Annotated[int, typer.Option(help="Runs per page.", min=1, max=200)] = 20,
    cursor: Annotated[
        str | None, typer.Option(help="The next_cursor of the previous page.")
    ] = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Runs from the read model, newest first (one page)."""
    client = connect(profile, config, url)
    with failures(client):
        filters: dict[str, Any] = {"limit": limit}
        if status:
            filters["status"] = status
        if agent:
            filters["agent"] = agent
        if cursor:
            filters["cursor"] = cursor
        if workflow:
            filters["workflow_id"] = resolve_workflow(client, workflow).workflow_id
        page = client.list_executions(**filters)
        if output is Output.json:
            print_json(page)
            return
        console.print(
            table(
                None,
                ("run", "workflow", "status", "steps", "started", "took", "parent"),
                [_summary_row(run) for run in page.items],
            )
        )
        if page.next_cursor:
            err_console.print(f"more: --cursor {page.next_cursor}")


def _summary_row(run: ExecutionSummary) -> tuple[Any, ...]:
    steps = f"{run.steps_completed} done" + (
        f", {run.steps_failed} failed" if run.steps_failed else ""
    )
    took = None if run.duration_ms is None else f"{run.duration_ms / 1000:.1f}s"
    workflow = None if run.workflow_id is None else f"{run.workflow_id} v{run.workflow_version}"
    return (
        run.execution_id,
        workflow,
        run.status,
        steps,
        run.started_at,
        took,
        run.parent_execution_id,
    )


@runs_app.command("show")
def show_run(
    run: RunArgument,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    output: OutputOption = Output.table,
) -> None:
    """One run as the write side has it: state, steps, checkpoints, approvals, outcome."""
    client = connect(profile, config, url)
    with failures(client):
        _print_run(client.get_execution(run), output)


def _print_run(run: Execution, output: Output) -> None:
    if output is Output.json:
        print_json(run)
        return
    summary: dict[str, Any] = {
        "id": run.execution_id,
        "workflow": f"{run.workflow_id} v{run.workflow_version}",
        "state": run.state,
        "started": run.started_at,
        "modified": run.modified_at,
        "version": run.version,
        "rollbacks": run.rollbacks,
        "input": run.input,
    }
    if run.parent_execution_id:
        summary["forked from"] = (
            f"run {run.parent_execution_id} at checkpoint {run.forked_from_checkpoint_id}"
        )
    if run.outcome:
        summary["outcome"] = run.outcome
    console.print(fields(f"run {run.execution_id}", summary))
    rows: list[tuple[Any, ...]]
    if run.steps:
        rows = [(s.step_id, s.status, s.agent, s.attempts, s.error or s.output) for s in run.steps]
        console.print(table("steps", ("step", "status", "agent", "attempts", "output/error"), rows))
    if run.checkpoints:
        rows = [
            (c.sequence, c.checkpoint_id, c.step_id, c.position, c.size, c.storage)
            for c in run.checkpoints
        ]
        columns = ("seq", "checkpoint", "step", "position", "bytes", "storage")
        console.print(table("checkpoints", columns, rows))
    if run.approvals:
        rows = [
            (a.step_id, a.status, a.deadline, a.default_action, a.decided_by, a.prompt)
            for a in run.approvals
        ]
        console.print(
            table(
                "approvals", ("step", "status", "deadline", "default", "decided by", "prompt"), rows
            )
        )


@runs_app.command("timeline")
def timeline(
    run: RunArgument,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Stream events as they happen until the run ends."),
    ] = False,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Every event about a run in order: its own, failures, recovery plans, consensus, policy.

    With --follow the events come from the run's live stream (from its first event) and the
    command returns after the run's final event; --output json then prints JSON lines.
    """
    client = connect(profile, config, url)
    with failures(client):
        if follow:
            _follow(client, run, output)
            return
        page = client.get_timeline(run)
        events = list(page.events)
        while page.next_cursor is not None:
            page = client.get_timeline(run, cursor=page.next_cursor)
            events.extend(page.events)
        if output is Output.json:
            print_json({"execution": page.execution, "steps": page.steps, "events": events})
            return
        if page.execution is not None:
            console.print(f"run {run}: {page.execution.status}")
        rows = [_timeline_row(event) for event in events]
        console.print(table(None, ("#", "at", "event", "step", "details"), rows))


def _timeline_row(event: TimelineEvent) -> tuple[Any, ...]:
    return (
        event.aggregate_version if event.area == "executions" else "",
        event.occurred_at,
        event.event_type,
        event.step_id,
        _brief(event.summary),
    )


def _follow(client: Client, run: str, output: Output) -> None:
    with err_console.status(f"following run {run} (Ctrl-C stops)") as status:
        for event in client.stream_events(run):
            status.update(f"following run {run}: last {event.event_type}")
            if output is Output.json:
                print_json_line(event)
            else:
                console.print(_follow_line(event))


def _follow_line(event: RunEvent) -> str:
    data = event.model_dump()
    at = data.get("occurred_at")
    payload = data.get("payload") if isinstance(data.get("payload"), dict) else {}
    step = payload.get("step_id") if isinstance(payload, dict) else None
    parts = [cell(at), event.event_type]
    if step:
        parts.append(f"step={step}")
    brief = _brief(payload) if isinstance(payload, dict) else ""
    if brief:
        parts.append(brief)
    return "  ".join(parts)


def _brief(summary: dict[str, Any]) -> str:
    """The non-empty members of an event summary, short (the step is its own column)."""
    shown = []
    for key, value in summary.items():
        if key == "step_id" or value in (None, "", [], {}):
            continue
        text = cell(value)
        shown.append(f"{key}={text if len(text) <= 60 else text[:57] + '...'}")
    return " ".join(shown)


# --- operating ---------------------------------------------------------------------------------


@runs_app.command("cancel")
def cancel(
    run: RunArgument,
    reason: ReasonOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Cancel a run that has not ended (role developer)."""
    client = connect(profile, config, url)
    with failures(client):
        accepted = client.cancel_execution(run, reason=reason)
        _accepted(accepted, f"cancelled run {run}", output)


@runs_app.command("halt")
def halt(
    run: RunArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why the run is stopped (required).")],
    profile: ProfileOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Stop a run for good (role operator); fork it to go on from a checkpoint later."""
    client = connect(profile, config, url)
    with failures(client):
        accepted = client.halt_execution(run, reason=reason)
        _accepted(accepted, f"halted run {run}", output)


@runs_app.command("rollback")
def rollback(
    run: RunArgument,
    checkpoint: Annotated[
        str, typer.Argument(help="The checkpoint to go back to (see `omium runs show`).")
    ],
    reason: ReasonOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Roll a running run back to one of its checkpoints; it resumes from there (operator)."""
    client = connect(profile, config, url)
    with failures(client):
        accepted = client.roll_back(run, checkpoint, reason=reason)
        _accepted(accepted, f"rolled run {run} back to checkpoint {checkpoint}", output)


@runs_app.command("approve")
def approve(
    run: RunArgument,
    step: PendingStepArgument = None,
    comment: CommentOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Approve a step waiting for a human (role operator; you are recorded as the decider)."""
    client = connect(profile, config, url)
    with failures(client):
        chosen = step or _only_pending_step(client, run)
        accepted = client.approve(run, chosen, comment=comment)
        _accepted(accepted, f"approved step {chosen} of run {run}", output)


@runs_app.command("reject")
def reject(
    run: RunArgument,
    step: PendingStepArgument = None,
    comment: CommentOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Reject a step waiting for a human; it will not run (role operator)."""
    client = connect(profile, config, url)
    with failures(client):
        chosen = step or _only_pending_step(client, run)
        accepted = client.reject(run, chosen, comment=comment)
        _accepted(accepted, f"rejected step {chosen} of run {run}", output)


def _only_pending_step(client: Client, run: str) -> str:
    pending = [a.step_id for a in client.get_execution(run).approvals if a.status == "pending"]
    if len(pending) == 1:
        return pending[0]
    detail = (
        f"run {run} has no pending approval"
        if not pending
        else f"run {run} has {len(pending)} pending approvals ({', '.join(pending)}): name the step"
    )
    raise InvalidRequestError(
        status=422,
        title="Step needed",
        detail=detail,
        extensions={"reason": "no_pending_approval" if not pending else "ambiguous_step"},
    )


def _accepted(accepted: ExecutionAccepted, message: str, output: Output) -> None:
    if output is Output.json:
        print_json(accepted)
    else:
        console.print(f"{message} (version {accepted.version}: {', '.join(accepted.events)})")


# --- forks -------------------------------------------------------------------------------------

StateOption = Annotated[
    str | None,
    typer.Option("--state", help="An edited state to start from (a JSON object)."),
]
StateFileOption = Annotated[
    Path | None, typer.Option("--state-file", help="A file holding the edited state (JSON).")
]
ForkVersionOption = Annotated[
    int | None,
    typer.Option(
        "--version", help="Definition version the new run runs (default: the run's).", min=1
    ),
]
WaitOption = Annotated[
    bool, typer.Option("--wait", help="Wait until the new run ends, showing its progress.")
]
TimeoutOption = Annotated[
    float, typer.Option(help="Seconds --wait waits before giving up.", min=0.1)
]


@runs_app.command("fork")
def fork(
    run: RunArgument,
    checkpoint: Annotated[
        str,
        typer.Argument(
            help="The checkpoint to start from: its id (see `omium runs show`), or first / last."
        ),
    ],
    version: ForkVersionOption = None,
    state: StateOption = None,
    state_file: StateFileOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = 600.0,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Start a new run from one of a run's checkpoints (role operator); the run is unchanged.

    Steps that had completed at the checkpoint stay completed; the others run again, starting
    from the checkpoint's state (or --state). The run may still be going.
    """
    edited = parse_json_object(state, state_file, "state")
    client = connect(profile, config, url)
    with failures(client):
        chosen = _checkpoint(client, run, checkpoint)
        forked = client.fork_execution(run, chosen, workflow_version=version, state=edited)
        _forked(client, forked, wait=wait, timeout=timeout, output=output)


@runs_app.command("resume")
def resume(
    run: RunArgument,
    checkpoint: Annotated[
        str,
        typer.Argument(help="The checkpoint to go on from (default: the run's last one)."),
    ] = "last",
    version: ForkVersionOption = None,
    state: StateOption = None,
    state_file: StateFileOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = 600.0,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Go on with a run that failed, was halted or was cancelled, in a new run (operator).

    A run that ended never runs again (its history stays as it is), so resuming forks it from
    its last (or the given) checkpoint: the new run keeps the completed steps and runs the
    rest. A run that is still going needs no resume (roll it back to a checkpoint instead).
    """
    edited = parse_json_object(state, state_file, "state")
    client = connect(profile, config, url)
    with failures(client):
        current = client.get_execution(run)
        if current.state not in ("failed", "halted", "cancelled"):
            hint = (
                "fork it to run it again from a checkpoint"
                if current.state == "completed"
                else "it is still going; roll it back to a checkpoint instead"
            )
            raise InvalidRequestError(
                status=409,
                title="Nothing to resume",
                detail=f"run {run} is {current.state}: {hint}",
                extensions={"reason": "not_resumable", "current_state": current.state},
            )
        chosen = _checkpoint(client, run, checkpoint, run_view=current)
        forked = client.fork_execution(run, chosen, workflow_version=version, state=edited)
        _forked(client, forked, wait=wait, timeout=timeout, output=output)


def _checkpoint(
    client: Client, run: str, checkpoint: str, *, run_view: Execution | None = None
) -> str:
    """A checkpoint id, with ``first`` and ``last`` resolved from the run's checkpoints."""
    if checkpoint not in ("first", "last"):
        return checkpoint
    checkpoints = sorted(
        (run_view or client.get_execution(run)).checkpoints, key=lambda c: c.sequence
    )
    if not checkpoints:
        raise InvalidRequestError(
            status=422,
            title="No checkpoint",
            detail=f"run {run} has no checkpoint to start from",
            extensions={"reason": "no_checkpoint"},
        )
    return checkpoints[0 if checkpoint == "first" else -1].checkpoint_id


def _forked(
    client: Client, forked: ForkAccepted, *, wait: bool, timeout: float, output: Output
) -> None:
    message = (
        f"forked run {forked.parent_execution_id} at checkpoint "
        f"{forked.forked_from_checkpoint_id} into run {forked.execution_id}"
    )
    if not wait:
        if output is Output.json:
            print_json(forked)
        else:
            console.print(message)
        return
    err_console.print(message)
    run = wait_with_progress(client, forked.execution_id, timeout_s=timeout)
    _print_run(run, output)
    if run.state != "completed":
        raise typer.Exit(code=1)
