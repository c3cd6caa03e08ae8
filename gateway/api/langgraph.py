"""``/api/v1/langgraph``: the routes behind ``omium.integrations.langgraph.OmiumSaver``.

A LangGraph thread is one Omium execution (of the tenant's ``langgraph`` workflow, started on
the thread's first checkpoint); each checkpoint namespace is one step of it (``graph`` for the
root graph, the namespace for a subgraph), scheduled and started on first use. Every ``put`` is
recorded as a ``CheckpointCreated`` event of that execution (state inline up to 64 KiB, else in
object storage), so LangGraph runs show up in timelines, search, dashboards and the audit trail.
Reads come from rows written in the event's transaction (``omium.commands.langgraph``).

Blobs are opaque here: the saver serialises with LangGraph's serde and sends ``type`` + base64
``data``; the gateway never unpickles anything.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from pydantic import AfterValidator, BaseModel, Field, StringConstraints, field_validator
from starlette.concurrency import run_in_threadpool

from omium.commands.langgraph import Query as StoreQuery
from omium.commands.langgraph import checkpoint_from, decode_cursor, page_of, writes_from
from omium.gateway._policy import requires
from omium.gateway._principal import Role
from omium.gateway.api._langgraph_runs import threads_of
from omium.gateway.api._models import RequestModel
from omium.gateway.api._support import Create, Read, Update
from omium.gateway.errors import MalformedRequestError

router = APIRouter(prefix="/langgraph", tags=["langgraph"])

# PostgreSQL text refuses NUL and lone surrogates: such input is a 422 here, never a failed
# query.
_NO_NUL = r"^[^\x00]*$"


def _utf8(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode (no unpaired surrogates)") from exc
    return value


_Utf8 = AfterValidator(_utf8)
_Text = Annotated[str, StringConstraints(strict=True, max_length=1000, pattern=_NO_NUL), _Utf8]
_Id = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=1000, pattern=_NO_NUL), _Utf8
]
_CheckpointId = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=200, pattern=_NO_NUL), _Utf8
]
_TypeTag = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=100, pattern=_NO_NUL), _Utf8
]
MAX_PAGE = 100


class Blob(BaseModel):
    """A value serialised by LangGraph's serde: its type tag and bytes (base64)."""

    type: _TypeTag
    data: Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]*={0,2}$")]

    @field_validator("data")
    @classmethod
    def _decodable(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"data is not valid base64: {exc}") from None
        return value


class PutCheckpoint(RequestModel):
    """A checkpoint of one namespace of a thread (``put``)."""

    thread_id: _Id
    checkpoint_ns: _Text = ""
    checkpoint_id: _CheckpointId
    parent_checkpoint_id: _Text | None = None
    checkpoint: Blob
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("metadata")
    @classmethod
    def _storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            text = json.dumps(value, ensure_ascii=False, allow_nan=False)
            text.encode("utf-8")
        except ValueError as exc:  # UnicodeEncodeError is a ValueError too
            raise ValueError(
                "metadata must be plain JSON (no NaN, Infinity or unpaired surrogates)"
            ) from exc
        if "\\u0000" in text or "\x00" in text:
            raise ValueError("metadata must not contain NUL characters")
        return value


class Write(BaseModel):
    """One pending write of a task."""

    idx: Annotated[int, Field(strict=True, ge=-(2**31), le=2**31 - 1)]
    channel: _Id
    value: Blob


class PutWrites(RequestModel):
    """Pending writes of one task, linked to a checkpoint (``put_writes``)."""

    thread_id: _Id
    checkpoint_ns: _Text = ""
    checkpoint_id: _CheckpointId
    task_id: _Id
    task_path: _Text = ""
    writes: Annotated[list[Write], Field(max_length=10_000)]
    replace: bool = Field(
        default=False,
        strict=True,
        description="Overwrite writes with the same "
        "(task_id, idx); LangGraph does so for special channels only.",
    )


class ThreadRef(RequestModel):
    """A thread (``delete_thread``)."""

    thread_id: _Id


class CopyThread(RequestModel):
    """Copy every checkpoint and write of a thread to another (``copy_thread``)."""

    source_thread_id: _Id
    target_thread_id: _Id


class DeleteRuns(RequestModel):
    """Delete the checkpoints of LangGraph runs (``delete_for_runs``)."""

    run_ids: Annotated[list[_Id], Field(max_length=1000)]


class Prune(RequestModel):
    """Prune threads (``prune``)."""

    thread_ids: Annotated[list[_Id], Field(max_length=1000)]
    strategy: Literal["keep_latest", "delete"] = "keep_latest"


class CheckpointStored(BaseModel):
    """A stored checkpoint and the Omium checkpoint it was recorded as."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    execution_id: str
    omium_checkpoint_id: str


class StoredWriteView(BaseModel):
    """A pending write as the saver reads it back."""

    task_id: str
    channel: str
    task_path: str
    idx: int
    value: Blob


class CheckpointTupleView(BaseModel):
    """A checkpoint with its metadata, parent and pending writes."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    checkpoint: Blob
    metadata: dict[str, Any]
    pending_writes: list[StoredWriteView]
    execution_id: str | None
    omium_checkpoint_id: str | None


class CheckpointPage(BaseModel):
    """Checkpoints, newest first; ``next_cursor`` fetches more (``None``: no more)."""

    items: list[CheckpointTupleView]
    next_cursor: str | None


class Changed(BaseModel):
    """How many checkpoints a deletion, copy or prune touched."""

    checkpoints: int
    execution_id: str | None = None


def _command(name: str) -> list[Any]:
    return [requires(Role.DEVELOPER, command=f"langgraph.{name}")]


@router.post(
    "/checkpoints",
    status_code=status.HTTP_201_CREATED,
    response_model=CheckpointStored,
    summary="Store a LangGraph checkpoint",
    dependencies=_command("put_checkpoint"),
)
async def put_checkpoint(body: PutCheckpoint, call: Create, request: Request) -> CheckpointStored:
    """Record the checkpoint as an Omium checkpoint of the thread's execution, then store it."""
    runs = threads_of(call, request)
    stored = await run_in_threadpool(runs.put, checkpoint_from(body.model_dump()))
    call.context.set_target(stored.execution_id)
    return CheckpointStored(
        thread_id=stored.thread_id,
        checkpoint_ns=stored.checkpoint_ns,
        checkpoint_id=stored.checkpoint_id,
        execution_id=str(stored.execution_id),
        omium_checkpoint_id=str(stored.omium_checkpoint_id),
    )


@router.post(
    "/writes",
    response_model=Changed,
    summary="Store a task's pending writes",
    dependencies=_command("put_writes"),
)
async def put_writes(body: PutWrites, call: Update, request: Request) -> Changed:
    """Store writes linked to a checkpoint (kept on a retry, unless ``replace``)."""
    runs = threads_of(call, request)
    key, writes, replace = writes_from(body.model_dump())
    await run_in_threadpool(runs.put_writes, key, writes, replace=replace)
    return Changed(checkpoints=0)


@router.get(
    "/checkpoints",
    response_model=CheckpointPage,
    summary="Find checkpoints (get_tuple, list)",
    dependencies=[requires(Role.VIEWER)],
)
async def find_checkpoints(
    call: Read,
    request: Request,
    thread_id: Annotated[str | None, Query(max_length=1000, pattern=_NO_NUL)] = None,
    checkpoint_ns: Annotated[str | None, Query(max_length=1000, pattern=_NO_NUL)] = None,
    checkpoint_id: Annotated[str | None, Query(max_length=200, pattern=_NO_NUL)] = None,
    before: Annotated[
        str | None,
        Query(max_length=200, pattern=_NO_NUL, description="Only checkpoint ids below this."),
    ] = None,
    filter: Annotated[
        str | None, Query(max_length=10_000, description="JSON object the metadata must contain.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> CheckpointPage:
    """Checkpoints newest first, each with its pending writes (``limit=1``: the latest)."""
    query = StoreQuery(
        thread_id=thread_id,
        checkpoint_ns=checkpoint_ns,
        checkpoint_id=checkpoint_id,
        before=before,
        metadata=_metadata_filter(filter),
        after_key=_cursor(cursor),
        limit=limit,
    )
    runs = threads_of(call, request)
    found = await run_in_threadpool(runs.store.find, call.tenant_id, query)
    return CheckpointPage.model_validate(page_of(found, limit))


@router.post(
    "/threads/delete",
    response_model=Changed,
    summary="Delete a thread",
    dependencies=_command("delete_thread"),
)
async def delete_thread(body: ThreadRef, call: Update, request: Request) -> Changed:
    """Delete the thread's checkpoints and writes; its execution is cancelled (history stays)."""
    runs = threads_of(call, request)
    count, execution_id = await run_in_threadpool(runs.delete_thread, body.thread_id)
    if execution_id is not None:
        call.context.set_target(execution_id)
    return Changed(
        checkpoints=count, execution_id=None if execution_id is None else str(execution_id)
    )


@router.post(
    "/threads/copy",
    response_model=Changed,
    summary="Copy a thread",
    dependencies=_command("copy_thread"),
)
async def copy_thread(body: CopyThread, call: Update, request: Request) -> Changed:
    """Copy every checkpoint (recorded in the target's execution) and write to another thread."""
    runs = threads_of(call, request)
    count = await run_in_threadpool(runs.copy_thread, body.source_thread_id, body.target_thread_id)
    return Changed(checkpoints=count)


@router.post(
    "/runs/delete",
    response_model=Changed,
    summary="Delete runs' checkpoints",
    dependencies=_command("delete_for_runs"),
)
async def delete_for_runs(body: DeleteRuns, call: Update, request: Request) -> Changed:
    """Delete the checkpoints whose metadata ``run_id`` is one of ``run_ids``."""
    runs = threads_of(call, request)
    count = await run_in_threadpool(runs.store.delete_runs, call.context.tenant_id, body.run_ids)
    return Changed(checkpoints=count)


@router.post(
    "/threads/prune",
    response_model=Changed,
    summary="Prune threads",
    dependencies=_command("prune"),
)
async def prune(body: Prune, call: Update, request: Request) -> Changed:
    """Keep each namespace's latest checkpoint, or delete all (``strategy``)."""
    runs = threads_of(call, request)
    count = await run_in_threadpool(
        runs.store.prune, call.context.tenant_id, body.thread_ids, body.strategy
    )
    return Changed(checkpoints=count)


def _metadata_filter(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
        storable = json.dumps(value, allow_nan=False)
    except ValueError:
        value, storable = None, ""
    if not isinstance(value, dict) or "\\u0000" in storable:
        raise MalformedRequestError(
            "filter must be a JSON object (no NaN, Infinity or NUL)", reason="filter"
        )
    return value


def _cursor(cursor: str | None) -> tuple[str, str, str] | None:
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor)
    except ValueError:
        raise MalformedRequestError("cursor was not issued by this list", reason="cursor") from None
