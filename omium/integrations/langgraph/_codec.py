"""What both savers share: LangGraph objects to the gateway's JSON and back.

Checkpoints and write values are serialised here with the saver's ``serde`` (LangGraph's
``JsonPlusSerializer`` by default) and travel as ``{"type", "data"}`` with base64 data: the
gateway stores them opaquely and never deserialises them. Metadata travels as JSON so the
gateway can filter on it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol


class Transport(Protocol):
    """What a sync saver sends its requests through: a ``Client``, or the embedded mode."""

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Answer one of the LangGraph routes' requests."""
        ...

    def close(self) -> None:
        """Release what the transport holds."""
        ...


class AsyncTransport(Protocol):
    """What an async saver sends its requests through: an ``AsyncClient``, or embedded."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Answer one of the LangGraph routes' requests."""
        ...

    async def close(self) -> None:
        """Release what the transport holds."""
        ...


CHECKPOINTS = "/api/v1/langgraph/checkpoints"
WRITES = "/api/v1/langgraph/writes"
DELETE_THREAD = "/api/v1/langgraph/threads/delete"
COPY_THREAD = "/api/v1/langgraph/threads/copy"
DELETE_RUNS = "/api/v1/langgraph/runs/delete"
PRUNE = "/api/v1/langgraph/threads/prune"
PAGE = 100


def _dump(serde: SerializerProtocol, value: Any) -> dict[str, str]:
    type_, data = serde.dumps_typed(value)
    return {"type": type_, "data": base64.b64encode(data).decode("ascii")}


def _load(serde: SerializerProtocol, blob: dict[str, str]) -> Any:
    return serde.loads_typed((blob["type"], base64.b64decode(blob["data"])))


def thread_of(config: RunnableConfig) -> tuple[str, str, str | None]:
    """``(thread_id, checkpoint_ns, checkpoint_id)`` of a config."""
    configurable = config["configurable"]
    return (
        str(configurable["thread_id"]),
        configurable.get("checkpoint_ns", ""),
        get_checkpoint_id(config),
    )


def put_body(
    serde: SerializerProtocol,
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
) -> tuple[dict[str, Any], RunnableConfig]:
    """The request body of a ``put``, and the config ``put`` returns."""
    thread_id, checkpoint_ns, parent_id = thread_of(config)
    # Round-trip through JSON now, so a value the gateway cannot store fails here, clearly.
    meta = json.loads(json.dumps(get_serializable_checkpoint_metadata(config, metadata)))
    body = {
        "thread_id": thread_id,
        "checkpoint_ns": checkpoint_ns,
        "checkpoint_id": checkpoint["id"],
        "parent_checkpoint_id": parent_id,
        "checkpoint": _dump(serde, checkpoint),
        "metadata": meta,
    }
    next_config: RunnableConfig = {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint["id"],
        }
    }
    return body, next_config


def writes_body(
    serde: SerializerProtocol,
    config: RunnableConfig,
    writes: Sequence[tuple[str, Any]],
    task_id: str,
    task_path: str,
) -> dict[str, Any]:
    """The request body of a ``put_writes``.

    Special channels (errors, interrupts ...) get fixed negative indexes and replace earlier
    writes of the task; regular writes are kept as first stored, as LangGraph's own savers do.
    """
    thread_id, checkpoint_ns, checkpoint_id = thread_of(config)
    return {
        "thread_id": thread_id,
        "checkpoint_ns": checkpoint_ns,
        "checkpoint_id": checkpoint_id,
        "task_id": task_id,
        "task_path": task_path,
        "writes": [
            {
                "idx": WRITES_IDX_MAP.get(channel, idx),
                "channel": channel,
                "value": _dump(serde, value),
            }
            for idx, (channel, value) in enumerate(writes)
        ],
        "replace": all(channel in WRITES_IDX_MAP for channel, _ in writes),
    }


def to_tuple(serde: SerializerProtocol, item: dict[str, Any]) -> CheckpointTuple:
    """A checkpoint as the gateway returns it, as LangGraph's ``CheckpointTuple``."""
    thread, ns = item["thread_id"], item["checkpoint_ns"]
    parent = item["parent_checkpoint_id"]
    return CheckpointTuple(
        config={
            "configurable": {
                "thread_id": thread,
                "checkpoint_ns": ns,
                "checkpoint_id": item["checkpoint_id"],
            }
        },
        checkpoint=_load(serde, item["checkpoint"]),
        metadata=item["metadata"],
        parent_config=None
        if parent is None
        else {"configurable": {"thread_id": thread, "checkpoint_ns": ns, "checkpoint_id": parent}},
        pending_writes=[
            (w["task_id"], w["channel"], _load(serde, w["value"])) for w in item["pending_writes"]
        ],
    )


def get_params(config: RunnableConfig) -> dict[str, Any]:
    """The query of ``get_tuple``: one checkpoint, or the namespace's latest."""
    thread_id, checkpoint_ns, checkpoint_id = thread_of(config)
    return {
        "thread_id": thread_id,
        "checkpoint_ns": checkpoint_ns,
        "checkpoint_id": checkpoint_id,
        "limit": 1,
    }


def list_params(
    config: RunnableConfig | None,
    filter: dict[str, Any] | None,
    before: RunnableConfig | None,
) -> dict[str, Any]:
    """The query of ``list`` (without paging)."""
    params: dict[str, Any] = {}
    if config is not None:
        configurable = config["configurable"]
        params["thread_id"] = configurable.get("thread_id")
        params["checkpoint_ns"] = configurable.get("checkpoint_ns")
        params["checkpoint_id"] = get_checkpoint_id(config)
    if filter:
        params["filter"] = json.dumps(filter)
    if before is not None:
        params["before"] = get_checkpoint_id(before)
    return params


class Pager:
    """Pages of ``list``: how many to ask for next, and whether to go on."""

    def __init__(self, limit: int | None) -> None:
        """Stop after ``limit`` checkpoints (``None``: all)."""
        self.remaining = limit
        self.cursor: str | None = None

    def params(self, base: dict[str, Any]) -> dict[str, Any]:
        """The query of the next page."""
        size = PAGE if self.remaining is None else min(PAGE, self.remaining)
        return {**base, "limit": size, "cursor": self.cursor}

    def take(self, page: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The items of a page to yield; remembers where the next page starts."""
        items = page["items"]
        if self.remaining is not None:
            items = items[: self.remaining]
            self.remaining -= len(items)
        self.cursor = page.get("next_cursor")
        yield from items

    @property
    def done(self) -> bool:
        """Nothing more to fetch."""
        return self.cursor is None or (self.remaining is not None and self.remaining <= 0)
