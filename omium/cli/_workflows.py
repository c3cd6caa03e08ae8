"""``omium workflows apply|list|show``: workflow definitions on a gateway."""

from __future__ import annotations

import uuid
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
    connect,
    console,
    failures,
    fields,
    print_json,
    table,
)
from omium.sdk.client import Client, NotFoundError, Workflow
from omium.sdk.workflow import CONSENSUS_AGENT, load_workflow

workflows_app = typer.Typer(
    name="workflows",
    help="Register and inspect workflow definitions on a gateway.",
    no_args_is_help=True,
)
app.add_typer(workflows_app)

WorkflowArgument = Annotated[str, typer.Argument(help="The workflow's id or name.")]


@workflows_app.command("apply")
def apply_workflow(
    file: Annotated[
        Path,
        typer.Argument(help="Workflow file (YAML or JSON).", exists=True, dir_okay=False),
    ],
    name: Annotated[
        str | None, typer.Option(help="Name to register under (default: the file's name).")
    ] = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Register a workflow file, or publish it as a new version of the workflow of that name.

    The file is validated locally first. Applying an unchanged definition again publishes
    nothing and says so.
    """
    client = connect(profile, config, url)
    with failures(client):
        chosen, definition = definition_of(file, name)
        existing = client.find_workflows(name=chosen)
        if not existing:
            accepted = client.register_workflow(definition, name=chosen)
            action = "registered"
        elif existing[0].definition == definition:
            accepted = None
            action = "unchanged"
        else:
            accepted = client.publish_workflow_version(
                existing[0].workflow_id, definition, expected_version=existing[0].version
            )
            action = "published"
        workflow_id = accepted.workflow_id if accepted else existing[0].workflow_id
        version = accepted.definition_version if accepted else existing[0].latest_version
        result = {
            "action": action,
            "workflow_id": workflow_id,
            "name": chosen,
            "definition_version": version,
        }
        if output is Output.json:
            print_json(result)
        else:
            console.print(f"{action} workflow {chosen} ({workflow_id}), version {version}")


@workflows_app.command("list")
def list_workflows(
    name: Annotated[str | None, typer.Option(help="Only the workflow of this name.")] = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    output: OutputOption = Output.table,
) -> None:
    """The tenant's workflows with their latest versions."""
    client = connect(profile, config, url)
    with failures(client):
        found = sorted(client.find_workflows(name=name), key=lambda w: w.name)
        if output is Output.json:
            print_json(found)
            return
        rows = [
            (w.name, w.workflow_id, w.latest_version, len(_steps(w)), w.modified_at) for w in found
        ]
        console.print(table(None, ("name", "id", "version", "steps", "modified"), rows))


@workflows_app.command("show")
def show_workflow(
    workflow: WorkflowArgument,
    version: Annotated[
        int | None, typer.Option(help="Definition version (default: the latest).", min=1)
    ] = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    output: OutputOption = Output.table,
) -> None:
    """One workflow: its definition version and steps."""
    client = connect(profile, config, url)
    with failures(client):
        found = resolve_workflow(client, workflow, version=version)
        if output is Output.json:
            print_json(found)
            return
        console.print(
            fields(
                f"workflow {found.name}",
                {
                    "id": found.workflow_id,
                    "version": f"{found.definition_version} of {found.latest_version}",
                    "registered": found.registered_at,
                    "modified": found.modified_at,
                    "description": found.definition.get("description"),
                },
            )
        )
        rows = [
            (step.get("id"), step.get("agent"), ", ".join(step.get("needs") or []))
            for step in _steps(found)
        ]
        console.print(table("steps", ("step", "agent", "needs"), rows))


def resolve_workflow(client: Client, workflow: str, *, version: int | None = None) -> Workflow:
    """A workflow named by id or by name.

    Raises:
        NotFoundError: Neither an id nor a name of the tenant's workflows (as the gateway says
            for an unknown id).
    """
    if _is_uuid(workflow):
        return client.get_workflow(workflow, definition_version=version)
    found = client.find_workflows(name=workflow)
    if not found:
        raise NotFoundError(
            status=404,
            title="Not found",
            detail=f"no workflow named {workflow!r}",
            extensions={"reason": "unknown_workflow"},
        )
    if version is None:
        return found[0]
    return client.get_workflow(found[0].workflow_id, definition_version=version)


def definition_of(file: Path, name: str | None) -> tuple[str, dict[str, Any]]:
    """The name and JSON definition a workflow file registers as (validated locally first).

    The same shape ``Client.register_workflow`` sends for a file, so an unchanged file compares
    equal to the stored definition.
    """
    parsed = load_workflow(file)
    definition = parsed.model_dump(mode="json", exclude_none=True, exclude={"schema_uri"})
    for step in definition["steps"]:
        step.setdefault("agent", CONSENSUS_AGENT)
    chosen = name or definition.get("name")
    if not isinstance(chosen, str) or not chosen:
        raise ValueError("the workflow needs a name: pass --name or put one in the file")
    return chosen, definition


def _steps(workflow: Workflow) -> list[dict[str, Any]]:
    steps = workflow.definition.get("steps")
    return [step for step in steps if isinstance(step, dict)] if isinstance(steps, list) else []


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
