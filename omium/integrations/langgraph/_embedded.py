"""The savers' embedded mode: Omium's event store in the saver's own process, no gateway.

:class:`EmbeddedTransport` answers the same requests as the gateway's ``/api/v1/langgraph``
routes (same paths, bodies and pages), by calling the same write-side code
(:mod:`omium.commands.langgraph`) directly on a PostgreSQL connection pool. A ``put`` is one
PostgreSQL transaction holding the ``CheckpointCreated`` event, its idempotency key and the
checkpoint's read row; the outbox relay ships the event to Kafka like any other, exactly once,
so nothing on the call path waits for Kafka. The thread's execution and started steps are
remembered after the first ``put``, so later ``put``s read nothing before they write.

Refusals are raised as the client's errors with the gateway's status, type and extensions
(``ConflictError`` with ``current_state == "halted"`` for a halted run), so code written
against the gateway mode handles the embedded mode unchanged.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import SecretStr

from omium.commands import (
    CommandApplications,
    InvalidCommandError,
    InvalidTransitionError,
    event_store_env,
)
from omium.commands import ConflictError as StoreConflictError
from omium.commands import NotFoundError as StoreNotFoundError
from omium.commands.langgraph import (
    LangGraphThreads,
    Query,
    checkpoint_from,
    decode_cursor,
    page_of,
    store_for,
    writes_from,
)
from omium.integrations.langgraph import _codec as codec
from omium.kernel.errors import ConcurrencyError, DomainError
from omium.kernel.settings import OmiumSettings, PostgresSettings
from omium.sdk.client import ConflictError, InvalidRequestError, NotFoundError, OmiumAPIError

_PROBLEM = "urn:omium:problem:"
DEFAULT_POOL_SIZE = 4
"""Connections kept open per application (puts of concurrent threads run in parallel)."""


def settings_from_conn_string(conn_string: str, base: OmiumSettings | None = None) -> OmiumSettings:
    """Omium settings whose PostgreSQL is the one a libpq connection string names."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(conn_string)
    base = base or OmiumSettings()
    postgres = PostgresSettings(
        host=str(parts.get("host") or base.postgres.host),
        port=int(parts.get("port") or base.postgres.port),
        user=str(parts.get("user") or base.postgres.user),
        password=SecretStr(str(parts.get("password") or base.postgres.password.get_secret_value())),
        database=str(parts.get("dbname") or base.postgres.database),
    )
    return base.model_copy(update={"postgres": postgres})


class EmbeddedTransport:
    """The gateway's LangGraph routes as in-process calls, for one tenant."""

    def __init__(self, apps: CommandApplications, tenant_id: str, settings: OmiumSettings) -> None:
        """Serve ``tenant_id`` from ``apps`` (the transport closes them in :meth:`close`)."""
        self.apps = apps
        self.tenant_id = tenant_id
        self.threads = LangGraphThreads(apps, tenant_id, store_for(apps), settings.aws)
        self._routes: dict[tuple[str, str], Callable[[Mapping[str, Any]], Any]] = {
            ("GET", codec.CHECKPOINTS): self._find,
            ("POST", codec.CHECKPOINTS): self._put,
            ("POST", codec.WRITES): self._put_writes,
            ("POST", codec.DELETE_THREAD): self._delete_thread,
            ("POST", codec.COPY_THREAD): self._copy_thread,
            ("POST", codec.DELETE_RUNS): self._delete_runs,
            ("POST", codec.PRUNE): self._prune,
        }

    @classmethod
    def connect(
        cls,
        conn_string: str | None = None,
        *,
        tenant: str,
        settings: OmiumSettings | None = None,
        event_store_schema: str | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> EmbeddedTransport:
        """Open the event store (creating its tables if needed) for ``tenant``.

        Args:
            conn_string: The event store's PostgreSQL (libpq string or URL); default: settings.
            tenant: Every thread, execution and checkpoint belongs to this tenant.
            settings: Other settings (object storage for states over 64 KiB); default: env.
            event_store_schema: The event store's schema, if not Omium's default.
            pool_size: Connections per application.
        """
        if not isinstance(tenant, str) or not tenant.strip():
            raise ValueError("tenant must be a non-empty string")
        settings = settings or OmiumSettings()
        if conn_string is not None:
            settings = settings_from_conn_string(conn_string, settings)
        # This process writes its threads' executions: another writer (an operator's halt)
        # shows up as a conflict on save, not as a read before every put.
        options: dict[str, Any] = {"pool_size": pool_size, "fast_forward": False}
        if event_store_schema is not None:
            options["schema"] = event_store_schema
        apps = CommandApplications.create(event_store_env(settings, **options))
        return cls(apps, tenant, settings)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> Any:
        """Answer one request as the gateway route of ``method`` and ``path`` would."""
        route = self._routes.get((method, path))
        if route is None:
            raise NotFoundError(status=404, type=f"{_PROBLEM}not-found", detail=path)
        try:
            return route((params if method == "GET" else json) or {})
        except (DomainError, ConcurrencyError) as refused:
            raise _as_client_error(refused) from refused

    def close(self) -> None:
        """Close the event store's connections."""
        self.apps.close()

    # --- the routes ------------------------------------------------------------------------

    def _find(self, params: Mapping[str, Any]) -> dict[str, Any]:
        limit = int(params.get("limit") or codec.PAGE)
        text = params.get("filter")
        cursor = params.get("cursor")
        query = Query(
            thread_id=params.get("thread_id"),
            checkpoint_ns=params.get("checkpoint_ns"),
            checkpoint_id=params.get("checkpoint_id"),
            before=params.get("before"),
            metadata=None if text is None else json.loads(text),
            after_key=None if cursor is None else decode_cursor(cursor),
            limit=limit,
        )
        return page_of(self.threads.store.find(self.tenant_id, query), limit)

    def _put(self, body: Mapping[str, Any]) -> dict[str, Any]:
        stored = self.threads.put(checkpoint_from(body))
        return {
            "thread_id": stored.thread_id,
            "checkpoint_ns": stored.checkpoint_ns,
            "checkpoint_id": stored.checkpoint_id,
            "execution_id": str(stored.execution_id),
            "omium_checkpoint_id": str(stored.omium_checkpoint_id),
        }

    def _put_writes(self, body: Mapping[str, Any]) -> dict[str, Any]:
        key, writes, replace = writes_from(body)
        self.threads.put_writes(key, writes, replace=replace)
        return {"checkpoints": 0, "execution_id": None}

    def _delete_thread(self, body: Mapping[str, Any]) -> dict[str, Any]:
        count, execution_id = self.threads.delete_thread(body["thread_id"])
        return {
            "checkpoints": count,
            "execution_id": None if execution_id is None else str(execution_id),
        }

    def _copy_thread(self, body: Mapping[str, Any]) -> dict[str, Any]:
        count = self.threads.copy_thread(body["source_thread_id"], body["target_thread_id"])
        return {"checkpoints": count, "execution_id": None}

    def _delete_runs(self, body: Mapping[str, Any]) -> dict[str, Any]:
        count = self.threads.store.delete_runs(self.tenant_id, body["run_ids"])
        return {"checkpoints": count, "execution_id": None}

    def _prune(self, body: Mapping[str, Any]) -> dict[str, Any]:
        strategy = body.get("strategy", "keep_latest")
        count = self.threads.store.prune(self.tenant_id, body["thread_ids"], strategy)
        return {"checkpoints": count, "execution_id": None}


class AsyncEmbeddedTransport:
    """:class:`EmbeddedTransport` for asyncio: each request runs in a worker thread.

    The write side is synchronous (psycopg's pool under the ``eventsourcing`` library), so an
    awaited request is one hop to a thread; the event loop never blocks on PostgreSQL, and
    concurrent graphs' puts run on the pool's connections side by side.
    """

    def __init__(self, sync: EmbeddedTransport) -> None:
        """Wrap ``sync`` (closing this closes it)."""
        self.sync = sync

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> Any:
        """See :meth:`EmbeddedTransport.request`."""
        return await asyncio.to_thread(self.sync.request, method, path, params=params, json=json)

    async def close(self) -> None:
        """Close the event store's connections."""
        await asyncio.to_thread(self.sync.close)


def _as_client_error(refused: DomainError | ConcurrencyError) -> OmiumAPIError:
    """The client error the gateway's problem for ``refused`` would have raised."""
    members = {
        name: str(value) if name == "aggregate_id" else value
        for name in ("reason", "field", "current_state", "command", "aggregate_id")
        if (value := getattr(refused, name, None)) is not None
    }
    if isinstance(refused, InvalidTransitionError):
        return ConflictError(
            status=409,
            type=f"{_PROBLEM}invalid-transition",
            title="Command not allowed in this state",
            detail=str(refused),
            extensions=members,
        )
    if isinstance(refused, StoreNotFoundError):
        return NotFoundError(
            status=404, type=f"{_PROBLEM}not-found", title="Resource not found", detail=str(refused)
        )
    if isinstance(refused, InvalidCommandError):
        return InvalidRequestError(
            status=422,
            type=f"{_PROBLEM}invalid-command",
            title="Command is invalid",
            detail=str(refused),
            extensions=members,
        )
    return ConflictError(
        status=409,
        type=f"{_PROBLEM}{'conflict' if isinstance(refused, StoreConflictError) else 'domain'}",
        title="Command refused",
        detail=str(refused),
        extensions=members,
    )
