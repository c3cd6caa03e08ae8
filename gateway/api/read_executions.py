"""Read routes over the PostgreSQL read model: the runs list, a run's timeline, checkpoint state.

``GET /executions/{id}`` (the write side's view of one run) lives in ``executions.py``; these
routes answer from the projection, so they can filter, page and join across runs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import datetime
from typing import Annotated, Any, Literal

import boto3
from fastapi import APIRouter, Query, Response

from omium.commands import CheckpointPrunedError
from omium.gateway._openapi import problems
from omium.gateway._policy import TenantId, requires
from omium.gateway._principal import Role
from omium.gateway.api.read_common import (
    CheckpointCorruptError,
    ReadModelNotFoundError,
    Stores,
    known,
    pg_connection,
)
from omium.projections import ExecutionFilter
from omium.sdk.client import ExecutionSummary, Page, StepView, Timeline, TimelineEvent

router = APIRouter(prefix="/executions", tags=["executions (read model)"])

Status = Literal[
    "pending", "running", "waiting_for_approval", "completed", "failed", "halted", "cancelled"
]
Limit = Annotated[int, Query(ge=1, le=200, description="Most items per page.")]
Cursor = Annotated[str | None, Query(max_length=512, description="`next_cursor` of a page.")]


# The answers are the SDK's models (one definition for the gateway and its clients); a read
# model row is cut to the model's fields (``known``), so its other columns never reach a caller.
ExecutionPage = Page[ExecutionSummary]


def _summary(row: dict[str, Any]) -> ExecutionSummary:
    return known(ExecutionSummary, row)


@router.get(
    "",
    response_model=ExecutionPage,
    summary="List runs (read model)",
    dependencies=[requires(Role.VIEWER)],
)
async def list_executions(
    tenant_id: TenantId,
    stores: Stores,
    status: Status | None = None,
    workflow_id: Annotated[str | None, Query(max_length=200)] = None,
    agent: Annotated[str | None, Query(max_length=200)] = None,
    started_after: datetime | None = None,
    started_before: datetime | None = None,
    label: Annotated[list[str], Query(max_length=20, description="`key=value`; repeatable.")] = [],  # noqa: B006 - FastAPI copies defaults per request
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ExecutionPage:
    """The tenant's runs, newest first, filtered by status, workflow, agent, time and labels."""
    labels = dict(item.split("=", 1) for item in label if "=" in item)
    filters = ExecutionFilter(
        status=status,
        workflow_id=workflow_id,
        agent=agent,
        started_after=started_after,
        started_before=started_before,
        labels=labels,
    )
    async with pg_connection(stores) as conn:
        page = await stores.queries.list_executions(
            conn, tenant_id, filters, limit=limit, cursor=cursor
        )
    return ExecutionPage(items=[_summary(r) for r in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{execution_id}/timeline",
    response_model=Timeline,
    summary="A run's full timeline (read model)",
    dependencies=[requires(Role.VIEWER)],
)
async def execution_timeline(
    execution_id: str,
    tenant_id: TenantId,
    stores: Stores,
    limit: Annotated[int, Query(ge=1, le=2000)] = 500,
    cursor: Cursor = None,
) -> Timeline:
    """Steps, checkpoints, failures, recoveries, consensus and policy events, in order."""
    queries = stores.queries
    async with pg_connection(stores) as conn:
        execution = await queries.get_execution(conn, tenant_id, execution_id)
        page = await queries.timeline(conn, tenant_id, execution_id, limit=limit, cursor=cursor)
        steps = await queries.steps(conn, tenant_id, execution_id) if execution else []
    if execution is None and not page.items:
        raise ReadModelNotFoundError("Execution", execution_id)
    return Timeline(
        execution=_summary(execution) if execution else None,
        steps=[known(StepView, s) for s in steps],
        events=[known(TimelineEvent, {**e, "event_id": str(e["event_id"])}) for e in page.items],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/{execution_id}/checkpoints/{checkpoint_id}/state",
    summary="Download a checkpoint's state (read model)",
    dependencies=[requires(Role.VIEWER)],
    responses={
        200: {
            "content": {"application/octet-stream": {}},
            "description": "The state blob; `X-Checksum-SHA256` is its checksum.",
        },
        **problems(410),
    },
)
async def checkpoint_state(
    execution_id: str, checkpoint_id: str, tenant_id: TenantId, stores: Stores
) -> Response:
    """The state blob, verified against its checksum before it is sent (fails closed).

    A checkpoint retention pruned answers 410 ``checkpoint-pruned``, never a corrupt state.
    """
    async with pg_connection(stores) as conn:
        row = await stores.queries.checkpoint(conn, tenant_id, execution_id, checkpoint_id)
    if row is None:
        raise ReadModelNotFoundError("Checkpoint", checkpoint_id)
    if row.get("pruned_at") is not None:
        # Retention let its state go: gone (410), not corrupt.
        raise CheckpointPrunedError(
            checkpoint_id=checkpoint_id,
            execution_id=execution_id,
            checksum=row["checksum_sha256"],
        )
    state = await _state_of(row, stores)
    digest = hashlib.sha256(state).digest()
    if digest.hex() != row["checksum_sha256"]:
        raise CheckpointCorruptError(
            checkpoint_id, expected=row["checksum_sha256"], actual=digest.hex()
        )
    return Response(
        content=state,
        media_type="application/octet-stream",
        headers={
            "X-Checksum-SHA256": row["checksum_sha256"],
            "Repr-Digest": f"sha-256=:{base64.b64encode(digest).decode()}:",
            "X-Checkpoint-Storage": row["storage"],
        },
    )


async def _state_of(row: dict[str, Any], stores: Stores) -> bytes:
    if row["storage"] == "inline":
        return bytes(row["inline_state"] or b"")
    aws = stores.settings.aws
    client = boto3.client(
        "s3",
        endpoint_url=aws.endpoint_url,
        region_name=aws.region,
        aws_access_key_id=aws.access_key_id.get_secret_value(),
        aws_secret_access_key=aws.secret_access_key.get_secret_value(),
    )

    def fetch() -> bytes:
        try:
            body = client.get_object(Bucket=aws.checkpoint_bucket, Key=row["object_key"])["Body"]
        except client.exceptions.NoSuchKey:
            raise ReadModelNotFoundError("CheckpointState", row["object_key"]) from None
        return bytes(body.read())

    return await asyncio.to_thread(fetch)
