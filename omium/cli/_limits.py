"""``omium limits show | set``: the tenant's concurrency limits, changed while work runs."""

from __future__ import annotations

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
from omium.cli._workflows import resolve_workflow
from omium.sdk.client import Client, TenantLimits

limits_app = typer.Typer(
    name="limits",
    help="Concurrency limits: runs and steps of the tenant running at once.",
    no_args_is_help=True,
)
app.add_typer(limits_app)

_KEYS = {"runs": "max_running_executions", "steps": "max_concurrent_steps"}


@limits_app.command("show")
def show(
    profile: ProfileOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    output: OutputOption = Output.table,
) -> None:
    """The tenant's limits: tenant-wide and per workflow (none: unlimited)."""
    client = connect(profile, config, url)
    with failures(client):
        _print(client, client.get_limits(), output)


@limits_app.command("set")
def set_limits(
    runs: Annotated[
        str | None,
        typer.Option(
            "--runs",
            metavar="N|none",
            help="Most runs running at once (more wait in line); none: unlimited.",
        ),
    ] = None,
    steps: Annotated[
        str | None,
        typer.Option(
            "--steps",
            metavar="N|none",
            help="Most steps running at once (more wait in line); none: unlimited.",
        ),
    ] = None,
    workflow: Annotated[
        str | None,
        typer.Option(help="Set this workflow's own limits (name or id) instead of the tenant's."),
    ] = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Change limits; the others stay. A raise starts waiting runs at once; a cut stops nothing.

    Example: ``omium limits set --runs 5 --steps 20``, ``omium limits set --workflow report
    --runs 1``, ``omium limits set --runs none``.
    """
    changes = {key: _limit(value, f"--{name}") for name, key, value in _given(runs, steps)}
    if not changes:
        raise typer.BadParameter("give --runs and/or --steps")
    client = connect(profile, config, url)
    with failures(client):
        current = client.get_limits()
        tenant: dict[str, Any] = {
            "max_running_executions": current.max_running_executions,
            "max_concurrent_steps": current.max_concurrent_steps,
        }
        workflows = {k: v.model_dump() for k, v in current.workflows.items()}
        if workflow is None:
            tenant.update(changes)
        else:
            wid = str(resolve_workflow(client, workflow).workflow_id)
            workflows[wid] = {**workflows.get(wid, dict.fromkeys(_KEYS.values())), **changes}
        client.set_limits(
            **tenant,
            workflows={
                k: v for k, v in workflows.items() if any(x is not None for x in v.values())
            },
            expected_version=current.version or None,
        )
        _print(client, client.get_limits(), output)


def _given(runs: str | None, steps: str | None) -> list[tuple[str, str, str]]:
    pairs = (("runs", runs), ("steps", steps))
    return [(name, _KEYS[name], value) for name, value in pairs if value is not None]


def _limit(value: str, option: str) -> int | None:
    if value.strip().lower() in ("none", "unlimited", "-"):
        return None
    try:
        number = int(value)
    except ValueError:
        raise typer.BadParameter(f"{option}: a whole number or none, not {value!r}") from None
    if number < 1:
        raise typer.BadParameter(f"{option}: at least 1 (none: unlimited)")
    return number


def _print(client: Client, limits: TenantLimits, output: Output) -> None:
    if output is Output.json:
        print_json(limits)
        return
    names = (
        {str(w.workflow_id): w.name for w in client.find_workflows()} if limits.workflows else {}
    )
    rows = [("tenant", _show(limits.max_running_executions), _show(limits.max_concurrent_steps))]
    rows += [
        (
            f"workflow {names.get(wid, wid)}",
            _show(own.max_running_executions),
            _show(own.max_concurrent_steps),
        )
        for wid, own in sorted(limits.workflows.items())
    ]
    console.print(table(None, ("scope", "running runs", "concurrent steps"), rows))


def _show(value: int | None) -> str:
    return "none" if value is None else str(value)
