"""``AsyncOmiumSaver``: the asyncio checkpointer (``httpx.AsyncClient`` underneath)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
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
from omium.integrations.langgraph._saver import OmiumSaver
from omium.sdk.client import AsyncClient, Client, ClientConfig

if TYPE_CHECKING:
    from omium.integrations.langgraph._embedded import AsyncEmbeddedTransport
    from omium.kernel.settings import OmiumSettings


class AsyncOmiumSaver(BaseCheckpointSaver[int]):
    """An asyncio LangGraph checkpointer storing every checkpoint in Omium.

    Example:
        >>> async with AsyncClient(url, api_key=key) as omium:  # doctest: +SKIP
        ...     graph = builder.compile(checkpointer=AsyncOmiumSaver(omium))
        ...     await graph.ainvoke(inputs, {"configurable": {"thread_id": "t-1"}})

    Or embedded, on Omium's event store in this process (no gateway, no HTTP)::

        async with AsyncOmiumSaver.from_conn_string(dsn, tenant="acme") as saver:  # doctest: +SKIP
            graph = builder.compile(checkpointer=saver)

    The sync methods (for ``graph.invoke``) go through a sync :class:`~omium.Client` built
    from the same configuration on first use (embedded: the same event store connections).
    """

    def __init__(
        self,
        client: AsyncClient | codec.AsyncTransport,
        *,
        serde: SerializerProtocol | None = None,
    ) -> None:
        """Save through ``client`` (the caller keeps ownership: close it yourself).

        Args:
            client: A client whose credential has role developer (put) or viewer (reads only),
                or an embedded transport (see :meth:`from_conn_string`).
            serde: LangGraph serializer for checkpoints and writes (default JsonPlus).
        """
        super().__init__(serde=serde)
        self.client = client
        self._sync: OmiumSaver | None = None
        self._owns_client = False
        self._embedded: AsyncEmbeddedTransport | None = None

    @classmethod
    def from_config(cls, config: ClientConfig, *, serde: SerializerProtocol | None = None) -> Self:
        """A saver with its own client built from ``config`` (``aclose()`` closes it)."""
        saver = cls(AsyncClient(config=config), serde=serde)
        saver._owns_client = True
        return saver

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls,
        conn_string: str | None = None,
        *,
        tenant: str,
        serde: SerializerProtocol | None = None,
        settings: OmiumSettings | None = None,
        event_store_schema: str | None = None,
    ) -> AsyncIterator[Self]:
        """An embedded saver on the event store at ``conn_string``, for ``tenant``.

        Each ``aput`` is one PostgreSQL transaction (event, idempotency key, read row), run
        in a worker thread; the outbox relay (``omium relay``) carries the events to Kafka.
        Needs ``omium[worker]``.

        Args:
            conn_string: The event store's PostgreSQL; default: ``OMIUM_POSTGRES__*`` settings.
            tenant: The tenant every thread belongs to.
            serde: LangGraph serializer for checkpoints and writes (default JsonPlus).
            settings: Other settings (object storage for states over 64 KiB); default: env.
            event_store_schema: The event store's schema, if not Omium's default.
        """
        import asyncio

        from omium.integrations.langgraph._embedded import (
            AsyncEmbeddedTransport,
            EmbeddedTransport,
        )

        sync = await asyncio.to_thread(
            EmbeddedTransport.connect,
            conn_string,
            tenant=tenant,
            settings=settings,
            event_store_schema=event_store_schema,
        )
        transport = AsyncEmbeddedTransport(sync)
        saver = cls(transport, serde=serde)
        saver._owns_client = True
        saver._embedded = transport
        try:
            yield saver
        finally:
            await saver.aclose()

    async def __aenter__(self) -> Self:
        """Use the saver as an async context manager (``aclose()`` on exit)."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the saver."""
        await self.aclose()

    @property
    def sync(self) -> OmiumSaver:
        """The sync saver behind the sync methods (same configuration and serde)."""
        if self._sync is None:
            if self._embedded is not None:
                self._sync = OmiumSaver(self._embedded.sync, serde=self.serde)
            else:
                assert isinstance(self.client, AsyncClient)
                self._sync = OmiumSaver(Client(config=self.client.config), serde=self.serde)
        return self._sync

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The config's checkpoint, or its namespace's latest when it names none."""
        page = await self.client.request("GET", codec.CHECKPOINTS, params=codec.get_params(config))
        return codec.to_tuple(self.serde, page["items"][0]) if page["items"] else None

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints newest first, filtered by thread, namespace, metadata and ``before``."""
        if limit is not None and limit <= 0:
            return
        base, pager = codec.list_params(config, filter, before), codec.Pager(limit)
        while True:
            page = await self.client.request("GET", codec.CHECKPOINTS, params=pager.params(base))
            for item in pager.take(page):
                yield codec.to_tuple(self.serde, item)
            if pager.done:
                return

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Record a checkpoint in Omium; the config that addresses it."""
        body, next_config = codec.put_body(self.serde, config, checkpoint, metadata)
        await self.client.request("POST", codec.CHECKPOINTS, json=body)
        return next_config

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes for the config's checkpoint."""
        body = codec.writes_body(self.serde, config, writes, task_id, task_path)
        await self.client.request("POST", codec.WRITES, json=body)

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete a thread's checkpoints and writes; its Omium execution is cancelled."""
        await self.client.request("POST", codec.DELETE_THREAD, json={"thread_id": str(thread_id)})

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and writes) of these LangGraph runs."""
        if run_ids:
            await self.client.request("POST", codec.DELETE_RUNS, json={"run_ids": list(run_ids)})

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of a thread to another (recorded in its execution)."""
        await self.client.request(
            "POST",
            codec.COPY_THREAD,
            json={
                "source_thread_id": str(source_thread_id),
                "target_thread_id": str(target_thread_id),
            },
        )

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep each namespace's latest checkpoint (``keep_latest``) or delete all (``delete``).

        Not safe for graphs using LangGraph's (beta) ``DeltaChannel``.
        """
        if thread_ids:
            await self.client.request(
                "POST",
                codec.PRUNE,
                json={"thread_ids": [str(t) for t in thread_ids], "strategy": strategy},
            )

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Sync :meth:`aget_tuple` (through :attr:`sync`)."""
        return self.sync.get_tuple(config)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Sync :meth:`alist` (through :attr:`sync`)."""
        return self.sync.list(config, filter=filter, before=before, limit=limit)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Sync :meth:`aput` (through :attr:`sync`)."""
        return self.sync.put(config, checkpoint, metadata, new_versions)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Sync :meth:`aput_writes` (through :attr:`sync`)."""
        self.sync.put_writes(config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        """Sync :meth:`adelete_thread` (through :attr:`sync`)."""
        self.sync.delete_thread(thread_id)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Sync :meth:`adelete_for_runs` (through :attr:`sync`)."""
        self.sync.delete_for_runs(run_ids)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Sync :meth:`acopy_thread` (through :attr:`sync`)."""
        self.sync.copy_thread(source_thread_id, target_thread_id)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Sync :meth:`aprune` (through :attr:`sync`)."""
        self.sync.prune(thread_ids, strategy=strategy)

    async def aclose(self) -> None:
        """Close the clients this saver made (the sync one, and its own from ``from_config``).

        A client you passed in stays open: it is yours.
        """
        if self._sync is not None and self._embedded is None:
            self._sync.client.close()
        if self._owns_client:
            await self.client.close()
