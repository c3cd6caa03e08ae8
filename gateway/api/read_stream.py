"""Subscriptions: a run's events as Server-Sent Events, and a tenant's events over WebSocket.

Both read the Redis projection's streams, so they deliver what the projection has applied, in
order, and resume from an entry id: ``Last-Event-ID`` (SSE) or ``cursor`` (WebSocket).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

import redis.asyncio as aioredis
import structlog
from fastapi import APIRouter, Header, Query, Request, WebSocket
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError

from gateway._policy import TenantId, requires
from gateway._principal import Principal, Role
from gateway.api.read_common import (
    ReadModelNotFoundError,
    ReadModelUnavailableError,
    Stores,
    read_stores,
)
from gateway.errors import MalformedRequestError, RateLimitedError
from omium.kernel.errors import OmiumError
from projections import ReadStores
from projections.redis import RedisKeys

router = APIRouter(tags=["subscriptions"])
log = structlog.get_logger(__name__)

_ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")
_TERMINAL = frozenset({"ExecutionCompleted", "ExecutionFailed", "ExecutionHalted",
                       "ExecutionCancelled"})
_ENDED = frozenset({"completed", "failed", "halted", "cancelled"})
HEARTBEAT_S = 15.0
_BATCH = 200


def _entry(entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
    """A stream entry as the JSON subscribers receive."""
    data: dict[str, Any] = {k: v for k, v in fields.items() if k != "payload"}
    data["aggregate_version"] = int(fields.get("aggregate_version", "0"))
    data["execution_id"] = fields.get("execution_id") or None
    data["payload"] = json.loads(fields.get("payload") or "{}")
    data["cursor"] = entry_id
    return data


def _checked_entry_id(value: str | None, name: str) -> str | None:
    if value is not None and not _ENTRY_ID.fullmatch(value):
        raise MalformedRequestError(f"{name} must be an event id like 1712345678901-0",
                                    reason="cursor")
    return value


# ---------------------------------------------------------------------------------------- SSE


@router.get(
    "/executions/{execution_id}/events",
    summary="Follow a run's events (Server-Sent Events)",
    dependencies=[requires(Role.VIEWER)],
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "`id:` is the resume point, `event:` the event type."}},
)
async def execution_events(
    execution_id: str,
    request: Request,
    tenant_id: TenantId,
    stores: Stores,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
    after: Annotated[str | None, Query(max_length=64,
                                       description="Like Last-Event-ID, for clients that "
                                       "cannot set headers.")] = None,
) -> StreamingResponse:
    """Every event of the run from the start (or after ``Last-Event-ID``), then live ones.

    The stream ends after the run's final event; a heartbeat comment goes out every 15 s.
    """
    start = _checked_entry_id(last_event_id or after, "Last-Event-ID") or "0-0"
    keys = RedisKeys.for_prefix(stores.prefix)
    stream = keys.execution_events(tenant_id, execution_id)
    state = keys.execution(tenant_id, execution_id)
    client = stores.redis()
    try:
        found = await client.exists(stream, state)
    except RedisError as exc:
        raise ReadModelUnavailableError(f"Redis read model unavailable: {exc}") from exc
    if not found:
        raise ReadModelNotFoundError("Execution", execution_id)
    body = _sse(client, request, stream=stream, state=state, start=start)
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _sse(
    client: aioredis.Redis, request: Request, *, stream: str, state: str, start: str
) -> AsyncIterator[str]:
    cursor = start
    yield "retry: 2000\n\n"
    try:
        while True:
            found: Any = await client.xread({stream: cursor}, count=_BATCH,
                                            block=int(HEARTBEAT_S * 1000))
            if not found:
                if await client.hget(state, "status") in _ENDED or await request.is_disconnected():
                    return
                yield ": heartbeat\n\n"
                continue
            for entry_id, fields in found[0][1]:
                cursor = entry_id
                data = json.dumps(_entry(entry_id, fields), separators=(",", ":"))
                yield f"id: {entry_id}\nevent: {fields.get('event_type')}\ndata: {data}\n\n"
                if fields.get("event_type") in _TERMINAL:
                    return
    except RedisError:
        return  # the client reconnects with Last-Event-ID and resumes where this stopped


# ---------------------------------------------------------------------------------- WebSocket

# Close codes (4000-4999 are the application's): like the HTTP statuses they stand for.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_RATE_LIMITED = 4429
CLOSE_UNAVAILABLE = 4503


@router.websocket("/events/ws")
async def tenant_events(
    websocket: WebSocket,
    access_token: Annotated[str | None, Query(max_length=8192)] = None,
    types: Annotated[str | None, Query(max_length=2000,
                                       description="Comma-separated event types.")] = None,
    execution_id: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> None:
    """The caller's tenant's events as JSON messages, optionally filtered by type or run.

    Authenticate with ``Authorization: Bearer``, ``X-API-Key``, or ``?access_token=`` (browsers
    cannot set headers on a WebSocket). Without ``cursor`` only new events are sent; with one,
    the stream resumes after it (as far back as the tenant stream still reaches). Each message
    carries its ``cursor``. Minimum role: viewer.
    """
    principal = await _ws_principal(websocket, access_token)
    if principal is None:
        return
    if cursor is not None and not _ENTRY_ID.fullmatch(cursor):
        await websocket.accept()
        await websocket.close(code=1008, reason="cursor must look like 1712345678901-0")
        return
    stores = read_stores(websocket)  # type: ignore[arg-type]
    wanted = {t.strip() for t in types.split(",") if t.strip()} if types else None
    try:
        # Pinned before the handshake completes: whatever happens after it is delivered.
        start = cursor or await _now(stores, principal.tenant_id)
    except RedisError:
        await websocket.accept()
        await websocket.close(code=CLOSE_UNAVAILABLE, reason="read model unavailable")
        return
    await websocket.accept()
    pump = asyncio.create_task(_pump(websocket, stores, principal, wanted=wanted,
                                     execution_id=execution_id, cursor=start))
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass  # clients have nothing to say; reading notices when they leave
    finally:
        pump.cancel()


async def _now(stores: ReadStores, tenant_id: str) -> str:
    """The id of the tenant stream's newest entry ("$" in a loop would skip entries)."""
    stream = RedisKeys.for_prefix(stores.prefix).tenant_events(tenant_id)
    last: Any = await stores.redis().xrevrange(stream, count=1)
    return str(last[0][0]) if last else "0-0"


async def _ws_principal(websocket: WebSocket, access_token: str | None) -> Principal | None:
    """The caller, or ``None`` after accepting and closing the socket with the reason."""
    services = websocket.app.state.services
    bearer = websocket.headers.get("authorization", "")
    token = access_token or (bearer[7:] if bearer.lower().startswith("bearer ") else None)
    api_key = websocket.headers.get("x-api-key")
    try:
        if api_key is not None and token is None:
            principal: Principal = await services.api_keys.authenticate(api_key)
        elif token is not None and api_key is None:
            principal = await services.tokens.verify(token)
        else:
            raise PermissionError("send one credential: a bearer token or an API key")
        await services.rate_limiter.acquire(principal)
    except RateLimitedError:
        await _refuse(websocket, CLOSE_RATE_LIMITED, "rate limited")
        return None
    except (OmiumError, PermissionError):
        await _refuse(websocket, CLOSE_UNAUTHENTICATED, "unauthenticated")
        return None
    if not principal.has(Role.VIEWER):
        await _refuse(websocket, CLOSE_FORBIDDEN, "requires role viewer")
        return None
    return principal


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    # Accepted first so the client sees the code and reason (a refused handshake is a bare 403).
    await websocket.accept()
    await websocket.close(code=code, reason=reason)


async def _pump(
    websocket: WebSocket, stores: ReadStores, principal: Principal, *,
    wanted: set[str] | None, execution_id: str | None, cursor: str,
) -> None:
    stream = RedisKeys.for_prefix(stores.prefix).tenant_events(principal.tenant_id)
    client = stores.redis()
    try:
        while True:
            found: Any = await client.xread({stream: cursor}, count=_BATCH,
                                            block=int(HEARTBEAT_S * 1000))
            for entry_id, fields in found[0][1] if found else ():
                cursor = entry_id
                if wanted is not None and fields.get("event_type") not in wanted:
                    continue
                if execution_id is not None and fields.get("execution_id") != execution_id:
                    continue
                await websocket.send_json(_entry(entry_id, fields))
    except RedisError as exc:
        log.warning("subscription.redis_error", error=str(exc), stream=stream)
        await websocket.close(code=CLOSE_UNAVAILABLE, reason="read model unavailable")
