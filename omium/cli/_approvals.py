"""``omium approvals list``: the steps waiting for a human decision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from omium.cli._app import app
from omium.cli._operator import (
    ConfigOption,
    Output,
    OutputOption,
    ProfileOption,
    UrlOption,
    connect,
    console,
    failures,
    print_json,
    table,
)
from omium.sdk.client import Client, NotFoundError

approvals_app = typer.Typer(
    name="approvals",
    help="Human approvals waiting for a decision.",
    no_args_is_help=True,
)
app.add_typer(approvals_app)


@approvals_app.command("list")
def list_approvals(
    limit: Annotated[
        int, typer.Option(help="At most this many waiting runs are looked at.", min=1, max=1000)
    ] = 200,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Pending approvals, soonest deadline first.

    Runs waiting for approval are found in the read model; each one's approvals are then read
    from the write side, so an approval decided a moment ago is not shown.
    """
    client = connect(profile, config, url)
    with failures(client):
        pending = pending_approvals(client, limit=limit)
        if output is Output.json:
            print_json(pending)
            return
        now = datetime.now(UTC)
        rows = [
            (
                item["execution_id"],
                item["step_id"],
                item["deadline"],
                _due(item["deadline"], now),
                item["default_action"],
                _deciders(item),
                item.get("prompt"),
            )
            for item in pending
        ]
        columns = ("run", "step", "deadline", "due in", "default", "who decides", "prompt")
        console.print(table(None, columns, rows))


def pending_approvals(client: Client, *, limit: int) -> list[dict[str, Any]]:
    """Every pending approval of the tenant's waiting runs, soonest deadline first."""
    found: list[dict[str, Any]] = []
    seen = 0
    for summary in client.iter_executions(status="waiting_for_approval", limit=min(limit, 200)):
        seen += 1
        if seen > limit:
            break
        try:
            run = client.get_execution(summary.execution_id)
        except NotFoundError:
            continue
        for approval in run.approvals:
            if approval.status != "pending":
                continue
            item = approval.model_dump(mode="python")
            item.update(execution_id=run.execution_id, workflow_id=run.workflow_id)
            found.append(item)
    return sorted(found, key=lambda item: item["deadline"])


def _deciders(item: dict[str, Any]) -> str:
    named = ", ".join(item.get("approvers") or [])
    role = item.get("approver_role")
    if named and role:
        who = f"{named} (role {role}+)"
    else:
        who = named or (f"role {role}+" if role else "any operator")
    # An escalated approval's deciders are its escalation's: say so.
    return f"{who} [escalated]" if item.get("escalated_at") else who


def _due(deadline: datetime, now: datetime) -> str:
    seconds = int((deadline - now).total_seconds())
    if seconds <= 0:
        return "overdue"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86_400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86_400}d"
