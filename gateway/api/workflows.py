"""``/api/v1/workflows``: register workflows, publish new definition versions, read them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from omium.commands import CommandResult, InvalidCommandError, NotFoundError
from omium.commands.workflows import WorkflowView
from omium.gateway._openapi import created, link, problems
from omium.gateway._policy import requires
from omium.gateway._principal import Role
from omium.gateway.api._models import (
    MAX_VERSION,
    EventNames,
    Identifier,
    JsonObject,
    RequestModel,
    VersionAfter,
    VersionedRequest,
    accepted_fields,
    location,
)
from omium.gateway.api._support import Create, Read, ReadCall, Update
from omium.gateway.api.read_common import Stores, pg_connection
from omium.projections import ReadStores

router = APIRouter(prefix="/workflows", tags=["workflows"])

_NEW_WORKFLOW = "$response.body#/workflow_id"

# Names are ids too: no outer spaces, no line breaks, at most 200 characters (as the domain).
WorkflowName = Identifier

_DEFINITION = (
    'The definition: a "steps" list of {"id", "agent", "needs"} forming a DAG, plus any other '
    "settings (checkpoints, post-conditions, policies, retry ...), kept as given."
)


class RegisterWorkflow(RequestModel):
    """A new workflow with its first definition."""

    name: WorkflowName = Field(description="Unique within the tenant.")
    definition: JsonObject = Field(description=_DEFINITION)


class PublishWorkflowVersion(VersionedRequest):
    """A new version of a workflow's definition."""

    definition: JsonObject = Field(description=_DEFINITION)


class WorkflowAccepted(BaseModel):
    """A registered workflow or a published version."""

    workflow_id: UUID
    version: VersionAfter
    events: EventNames
    definition_version: int = Field(description="The definition version this command made.")

    @classmethod
    def of(cls, result: CommandResult) -> WorkflowAccepted:
        """The answer for a command result."""
        # Every workflow event publishes one definition version, so the two numbers are equal.
        return cls(
            workflow_id=result.aggregate_id,
            definition_version=result.version,
            **accepted_fields(result),
        )


class Workflow(BaseModel):
    """A workflow at one definition version."""

    workflow_id: UUID
    name: str
    definition_version: int = Field(description="The version of ``definition``.")
    latest_version: int = Field(description="The newest definition version.")
    definition: JsonObject
    registered_at: datetime
    modified_at: datetime
    version: int = Field(description="Aggregate version (the ETag), for If-Match.")

    @classmethod
    def of(cls, view: WorkflowView) -> Workflow:
        """The answer for a query's view."""
        return cls(
            workflow_id=view.id,
            name=view.name,
            definition_version=view.definition_version,
            latest_version=view.latest_version,
            definition=view.definition,
            registered_at=view.registered_at,
            modified_at=view.modified_at,
            version=view.version,
        )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WorkflowAccepted,
    summary="Register a workflow (definition version 1)",
    dependencies=[requires(Role.DEVELOPER, command="workflows.register")],
    responses={
        **problems(409),
        **created(
            "The workflow was registered.",
            GetWorkflow=link("/workflows/{workflow_id}", workflow_id=_NEW_WORKFLOW),
            PublishWorkflowVersion=link(
                "/workflows/{workflow_id}/versions", "post", workflow_id=_NEW_WORKFLOW
            ),
            StartExecution=link(
                "/executions",
                "post",
                body={
                    "workflow_id": _NEW_WORKFLOW,
                    "workflow_version": "$response.body#/definition_version",
                },
            ),
        ),
    },
)
async def register_workflow(body: RegisterWorkflow, call: Create) -> WorkflowAccepted:
    """Register a workflow; a second workflow with the same name answers 409 already-exists."""
    result = await call.create(
        call.apps.workflows.register_workflow,
        lambda wid: location("workflows", wid),
        name=body.name,
        definition=body.definition,
    )
    return WorkflowAccepted.of(result)


@router.post(
    "/{workflow_id}/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=WorkflowAccepted,
    summary="Publish a new definition version",
    dependencies=[requires(Role.DEVELOPER, command="workflows.publish_version")],
    responses=problems(409),
)
async def publish_workflow_version(
    workflow_id: UUID, body: PublishWorkflowVersion, call: Update
) -> WorkflowAccepted:
    """Publish the next definition version; ``Location`` names the new version."""
    result = await call.update(
        call.apps.workflows.publish_workflow_version,
        workflow_id,
        body,
        definition=body.definition,
    )
    # The workflow's definition version is its aggregate version (one event per version).
    call.response.headers["Location"] = (
        location("workflows", workflow_id) + f"?definition_version={result.version}"
    )
    return WorkflowAccepted.of(result)


@router.get(
    "",
    response_model=list[Workflow],
    summary="Find the tenant's workflow by name, or list them all",
    dependencies=[requires(Role.VIEWER)],
)
async def find_workflow(
    call: Read,
    stores: Stores,
    name: Annotated[
        WorkflowName | None,
        Query(description="The workflow's name (default: every workflow, by name)."),
    ] = None,
) -> list[Workflow]:
    """The workflow with this name at its latest version (a list of one, or empty); or all.

    Without ``name``: the tenant's workflows by name, at most 500, found in the read model (a
    workflow registered a moment ago may be missing) and read from the write side.
    """
    if name is None:
        return await _every_workflow(call, stores)
    try:
        view = await call.run(call.apps.workflows.find_workflow, name)
    except NotFoundError:
        return []
    return [Workflow.of(view)]


async def _every_workflow(call: ReadCall, stores: ReadStores) -> list[Workflow]:
    async with pg_connection(stores) as conn:
        ids = await stores.queries.workflow_ids(conn, call.tenant_id, limit=_LIST_LIMIT)

    def load() -> list[WorkflowView]:
        views = []
        for workflow_id in ids:
            try:
                views.append(call.apps.workflows.get_workflow(call.tenant_id, UUID(workflow_id)))
            except NotFoundError:
                continue  # the read model is ahead of nothing; skip what the store lacks
        return views

    return [Workflow.of(view) for view in await run_in_threadpool(load)]


_LIST_LIMIT = 500


@router.get(
    "/{workflow_id}",
    response_model=Workflow,
    summary="Read a workflow",
    dependencies=[requires(Role.VIEWER)],
)
async def get_workflow(
    workflow_id: UUID,
    call: Read,
    definition_version: Annotated[
        int | None, Query(ge=1, le=MAX_VERSION, description="Default: the latest version.")
    ] = None,
) -> Workflow:
    """A workflow at its latest (or the given) definition version."""
    try:
        view = await call.run(
            call.apps.workflows.get_workflow, workflow_id, definition_version=definition_version
        )
    except InvalidCommandError as exc:
        if exc.reason != "unknown_version":
            raise
        raise NotFoundError(
            f"{workflow_id}?definition_version={definition_version}",
            aggregate_type="WorkflowVersion",
        ) from None
    return Workflow.of(view)
