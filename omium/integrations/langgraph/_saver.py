"""``OmiumSaver`` and ``AsyncOmiumSaver``: LangGraph checkpoint savers backed by Omium.

Every ``put`` becomes a checkpoint of the thread's Omium execution (a ``CheckpointCreated``
event), so a LangGraph thread shows up in Omium's timelines, search, dashboards and audit trail
like any other run, and an operator who halts or cancels that execution stops the graph at its
next checkpoint. Reads are answered by the gateway right after the write commits
(read-your-writes). See ``docs/sdk.md``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from omium.integrations.langgraph import _codec as codec
from omium.sdk.client import Client, ClientConfig

if TYPE_CHECKING:
    from omium.kernel.settings import OmiumSettings


class OmiumSaver(BaseCheckpointSaver[int]):
    """A synchronous LangGraph checkpointer storing every checkpoint in Omium.

    Example:
        >>> saver = OmiumSaver(Client("http://127.0.0.1:8000", api_key=key))  # doctest: +SKIP
        >>> graph = builder.compile(checkpointer=saver)  # doctest: +SKIP

    Or embedded, on Omium's event store in this process (no gateway)::

        with OmiumSaver.from_conn_string(dsn, tenant="acme") as saver:  # doctest: +SKIP
            graph = builder.compile(checkpointer=saver)

    Its async methods run the sync ones in a worker thread; in async code prefer
    :class:`AsyncOmiumSaver`.
    """

    def __init__(
        self, client: Client | codec.Transport, *, serde: SerializerProtocol | None = None
    ) -> None:
        """Save through ``client`` (the caller keeps ownership: close it yourself).

        Args:
            client: A client whose credential has role developer (put) or viewer (reads only),
                or an embedded transport (see :meth:`from_conn_string`).
            serde: LangGraph serializer for checkpoints and writes (default JsonPlus).
        """
        super().__init__(serde=serde)
        self.client = client
        self._owns_client = False

    @classmethod
    def from_config(cls, config: ClientConfig, *, serde: SerializerProtocol | None = None) -> Self:
        """A saver with its own client built from ``config`` (``close()`` closes it)."""
        saver = cls(Client(config=config), serde=serde)
        saver._owns_client = True
        return saver

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        conn_string: str | None = None,
        *,
        tenant: str,
        serde: SerializerProtocol | None = None,
        settings: OmiumSettings | None = None,
        event_store_schema: str | None = None,
    ) -> Iterator[Self]:
        """An embedded saver on the event store at ``conn_string``, for ``tenant``.

        Each ``put`` is one PostgreSQL transaction (event, idempotency key, read row); the
        outbox relay (``omium relay``) carries the events to Kafka. Needs ``omium[worker]``.

        Args:
            conn_string: The event store's PostgreSQL; default: ``OMIUM_POSTGRES__*`` settings.
            tenant: The tenant every thread belongs to.
            serde: LangGraph serializer for checkpoints and writes (default JsonPlus).
            settings: Other settings (object storage for states over 64 KiB); default: env.
            event_store_schema: The event store's schema, if not Omium's default.
        """
        from omium.integrations.langgraph._embedded import EmbeddedTransport

        transport = EmbeddedTransport.connect(
            conn_string, tenant=tenant, settings=settings, event_store_schema=event_store_schema
        )
        saver = cls(transport, serde=serde)
        saver._owns_client = True
        try:
            yield saver
        finally:
            saver.close()

    def close(self) -> None:
        """Close the client if this saver made it (``from_config``)."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> Self:
        """Use the saver as a context manager (``close()`` on exit)."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the saver."""
        self.close()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The config's checkpoint, or its namespace's latest when it names none."""
        page = self.client.request("GET", codec.CHECKPOINTS, params=codec.get_params(config))
        return codec.to_tuple(self.serde, page["items"][0]) if page["items"] else None

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first, filtered by thread, namespace, metadata and ``before``."""
        if limit is not None and limit <= 0:
            return
        base, pager = codec.list_params(config, filter, before), codec.Pager(limit)
        while True:
            page = self.client.request("GET", codec.CHECKPOINTS, params=pager.params(base))
            for item in pager.take(page):
                yield codec.to_tuple(self.serde, item)
            if pager.done:
                return

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Record a checkpoint in Omium; the config that addresses it."""
        body, next_config = codec.put_body(self.serde, config, checkpoint, metadata)
        self.client.request("POST", codec.CHECKPOINTS, json=body)
        return next_config

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes for the config's checkpoint."""
        body = codec.writes_body(self.serde, config, writes, task_id, task_path)
        self.client.request("POST", codec.WRITES, json=body)

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread's checkpoints and writes; its Omium execution is cancelled.

        The execution's event history stays (it is the audit trail); a later ``put`` on the
        same thread id starts a new execution.
        """
        self.client.request("POST", codec.DELETE_THREAD, json={"thread_id": str(thread_id)})

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and writes) of these LangGraph runs."""
        if run_ids:
            self.client.request("POST", codec.DELETE_RUNS, json={"run_ids": list(run_ids)})

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of a thread to another (recorded in its execution)."""
        self.client.request(
            "POST",
            codec.COPY_THREAD,
            json={
                "source_thread_id": str(source_thread_id),
                "target_thread_id": str(target_thread_id),
            },
        )

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep each namespace's latest checkpoint (``keep_latest``) or delete all (``delete``).

        Not safe for graphs using LangGraph's (beta) ``DeltaChannel``: their older checkpoints
        may still be needed to rebuild state.
        """
        if thread_ids:
            self.client.request(
                "POST",
                codec.PRUNE,
                json={"thread_ids": [str(t) for t in thread_ids], "strategy": strategy},
            )

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Async :meth:`get_tuple` (in a worker thread)."""
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async :meth:`list` (pages fetched in a worker thread)."""
        found = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))
        )
        for item in found:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Async :meth:`put` (in a worker thread)."""
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async :meth:`put_writes` (in a worker thread)."""
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        """Async :meth:`delete_thread` (in a worker thread)."""
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Async :meth:`delete_for_runs` (in a worker thread)."""
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Async :meth:`copy_thread` (in a worker thread)."""
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Async :meth:`prune` (in a worker thread)."""
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)
