"""What the read routes share: the read-model stores of the app, errors, page models.

Not a route module (it defines no ``router``); ``read_*`` route modules import it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

import psycopg
from fastapi import Depends, Request
from psycopg_pool import PoolTimeout
from pydantic import BaseModel

from omium.gateway._problems import register_error
from omium.kernel.errors import OmiumError, PersistenceError
from omium.projections import InvalidCursorError, ReadStores

register_error(
    InvalidCursorError,
    status=422,
    title="Invalid cursor",
    slug="invalid-cursor",
    extensions=("reason", "field"),
)


class ReadModelNotFoundError(OmiumError):
    """Nothing with this id in the caller's tenant's read model (HTTP 404).

    Attributes:
        resource_type: What was looked for (``"Execution"``, ``"Checkpoint"``).
        resource_id: The id looked up.
    """

    def __init__(self, resource_type: str, resource_id: object) -> None:
        self.resource_type = resource_type
        self.resource_id = str(resource_id)
        super().__init__(f"{resource_type} {resource_id} not found")


register_error(
    ReadModelNotFoundError,
    status=404,
    title="Resource not found",
    slug="not-found",
    extensions=("resource_type", "resource_id"),
)


class CheckpointCorruptError(OmiumError):
    """A checkpoint's state does not match its checksum: it is never served (HTTP 409).

    Attributes:
        checkpoint_id: The checkpoint.
        expected: The checksum recorded when it was taken.
        actual: The checksum of the bytes found.
    """

    def __init__(self, checkpoint_id: str, *, expected: str, actual: str) -> None:
        self.checkpoint_id = checkpoint_id
        self.expected = expected
        self.actual = actual
        super().__init__(f"checkpoint {checkpoint_id} state fails its checksum")


register_error(
    CheckpointCorruptError,
    status=409,
    title="Checkpoint state is corrupt",
    slug="checkpoint-corrupt",
    extensions=("checkpoint_id", "expected", "actual"),
)


class ReadModelUnavailableError(PersistenceError):
    """A read-model store cannot answer (HTTP 503, detail hidden)."""


def read_stores(request: Request) -> ReadStores:
    """The app's read-model stores, made on first use from the app's settings."""
    stores: ReadStores | None = getattr(request.app.state, "read_stores", None)
    if stores is None:
        stores = ReadStores(request.app.state.settings)
        request.app.state.read_stores = stores
    return stores


Stores = Annotated[ReadStores, Depends(read_stores)]


@asynccontextmanager
async def pg_connection(stores: ReadStores) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A pooled connection; outages become ``ReadModelUnavailableError`` (503)."""
    try:
        pool = await stores.pool()
        async with pool.connection(timeout=5.0) as conn:
            yield conn
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise ReadModelUnavailableError(f"PostgreSQL read model unavailable: {exc}") from exc
    except psycopg.errors.UndefinedTable as exc:
        # The projection has never run against this database: there is no read model yet.
        raise ReadModelUnavailableError("the PostgreSQL read model is not built yet") from exc


ModelT = TypeVar("ModelT", bound=BaseModel)


def known(model: type[ModelT], record: Mapping[str, Any]) -> ModelT:
    """``model`` from a read model's row or document, cut to the model's own fields.

    The answers are the SDK's models, which keep unknown fields (a newer gateway must not break
    an older client); cutting here keeps a row's other columns (its tenant, bookkeeping) from
    ever reaching a caller.
    """
    return model.model_validate({k: v for k, v in record.items() if k in model.model_fields})
