"""Subscriptions: a run's events as Server-Sent Events, and a tenant's events over WebSocket.

Both read the Redis projection's streams, so they deliver what the projection has applied, in
order, and resume from a cursor: ``Last-Event-ID`` (SSE) or ``cursor`` (WebSocket). A cursor is
a stream entry id, preceded by the read model's epoch once it has been rebuilt
(``omium replay redis``): a rebuild starts the streams' ids again, so a cursor of another epoch,
or a rebuild while a subscription is open, gets a ``resync`` event instead of wrong events.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

import redis.asyncio as aioredis
import structlog
from fastapi import APIRouter, Header, Path, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError

from omium.gateway._policy import TenantId, requires
from omium.gateway._principal import Principal, Role
from omium.gateway.api.read_common import (
    ReadModelNotFoundError,
    ReadModelUnavailableError,
    Stores,
    read_stores,
)
from omium.gateway.errors import MalformedRequestError, RateLimitedError
from omium.kernel.errors import OmiumError
from omium.projections import ReadStores
from omium.projections.redis import RedisKeys, cursor_of, parse_cursor

router = APIRouter(tags=["subscriptions"])
log = structlog.get_logger(__name__)

_CURSOR = re.compile(r"(\d{1,10}:)?\d{1,20}-\d{1,20}")
_RESYNC = "resync"
_TERMINAL = frozenset(
    {"ExecutionCompleted", "ExecutionFailed", "ExecutionHalted", "ExecutionCancelled"}
)
_ENDED = frozenset({"completed", "failed", "halted", "cancelled"})
HEARTBEAT_S = 15.0
_BATCH = 200


def _entry(epoch: int, entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
    """A stream entry as the JSON subscribers receive."""
    data: dict[str, Any] = {k: v for k, v in fields.items() if k != "payload"}
    data["aggregate_version"] = int(fields.get("aggregate_version", "0"))
    data["execution_id"] = fields.get("execution_id") or None
    data["payload"] = json.loads(fields.get("payload") or "{}")
    data["cursor"] = cursor_of(epoch, entry_id)
    return data


def _resync(epoch: int, entry_id: str, then: str) -> dict[str, Any]:
    """The message that tells a subscriber its cursor belongs to a replaced read model."""
    return {
        "event_type": _RESYNC,
        "cursor": cursor_of(epoch, entry_id),
        "payload": {
            "epoch": epoch,
            "reason": f"the live read model was rebuilt (epoch {epoch}); {then}",
        },
    }


def _checked_cursor(value: str | None, name: str) -> tuple[int, str] | None:
    if value is None:
        return None
    if not _CURSOR.fullmatch(value):
        raise MalformedRequestError(
            f"{name} must be an event id like 1712345678901-0 (or 2:1712345678901-0)",
            reason="cursor",
        )
    return parse_cursor(value)


async def _epoch(client: aioredis.Redis, keys: RedisKeys) -> int:
    """How many times the read model was rebuilt."""
    return int(await client.get(keys.epoch) or 0)


# ---------------------------------------------------------------------------------------- SSE


@router.get(
    "/executions/{execution_id}/events",
    summary="Follow a run's events (Server-Sent Events)",
    dependencies=[requires(Role.VIEWER)],
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`id:` is the resume point, `event:` the event type.",
        }
    },
)
async def execution_events(
    execution_id: Annotated[str, Path(max_length=64)],
    request: Request,
    tenant_id: TenantId,
    stores: Stores,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
    after: Annotated[
        str | None,
        Query(
            max_length=64, description="Like Last-Event-ID, for clients that cannot set headers."
        ),
    ] = None,
) -> StreamingResponse:
    """Every event of the run from the start (or after ``Last-Event-ID``), then live ones.

    The stream ends after the run's final event; a heartbeat comment goes out every 15 s.
    """
    resume = _checked_cursor(last_event_id or after, "Last-Event-ID")
    keys = RedisKeys.for_prefix(stores.prefix)
    # A UUID, never free text: keys are ``...:<tenant>:<run>``, so a run id holding ``:`` would
    # let tenant ``a`` name tenant ``a:b``'s keys (``b:<run>``). Anything else is no run of
    # this tenant: 404, as on the other run routes.
    try:
        run = str(UUID(execution_id))
    except ValueError:
        raise ReadModelNotFoundError("Execution", execution_id) from None
    stream = keys.execution_events(tenant_id, run)
    state = keys.execution(tenant_id, run)
    client = stores.redis()
    try:
        found = await client.exists(stream, state)
        epoch = await _epoch(client, keys)
    except RedisError as exc:
        raise ReadModelUnavailableError(f"Redis read model unavailable: {exc}") from exc
    if not found:
        raise ReadModelNotFoundError("Execution", execution_id)
    body = _sse(client, request, keys=keys, stream=stream, state=state, epoch=epoch, resume=resume)
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(
    client: aioredis.Redis,
    request: Request,
    *,
    keys: RedisKeys,
    stream: str,
    state: str,
    epoch: int,
    resume: tuple[int, str] | None,
) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    if resume is not None and resume[0] != epoch:
        yield _sse_resync(epoch)
        resume = None
    cursor = resume[1] if resume is not None else "0-0"
    try:
        while True:
            found: Any = await client.xread(
                {stream: cursor}, count=_BATCH, block=int(HEARTBEAT_S * 1000)
            )
            now = await _epoch(client, keys)
            if now != epoch:  # rebuilt meanwhile: what was read may be the new stream's
                epoch, cursor = now, "0-0"
                yield _sse_resync(epoch)
                continue
            if not found:
                if await client.hget(state, "status") in _ENDED or await request.is_disconnected():
                    return
                yield ": heartbeat\n\n"
                continue
            for entry_id, fields in found[0][1]:
                cursor = entry_id
                data = json.dumps(_entry(epoch, entry_id, fields), separators=(",", ":"))
                yield (
                    f"id: {cursor_of(epoch, entry_id)}\nevent: {fields.get('event_type')}\n"
                    f"data: {data}\n\n"
                )
                if fields.get("event_type") in _TERMINAL:
                    return
    except RedisError:
        return  # the client reconnects with Last-Event-ID and resumes where this stopped


def _sse_resync(epoch: int) -> str:
    """A resync event whose id resumes at the start of the rebuilt stream."""
    message = _resync(epoch, "0-0", "the run's events follow again from its first")
    data = json.dumps(message, separators=(",", ":"))
    return f"id: {message['cursor']}\nevent: {_RESYNC}\ndata: {data}\n\n"


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
    types: Annotated[
        str | None, Query(max_length=2000, description="Comma-separated event types.")
    ] = None,
    execution_id: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> None:
    """The caller's tenant's events as JSON messages, optionally filtered by type or run.

    Authenticate with ``Authorization: Bearer``, ``X-API-Key``, or, from a browser (which
    cannot set headers on a WebSocket), in ``Sec-WebSocket-Protocol``: offer the subprotocols
    ``omium.v1`` and ``omium.bearer.<token>`` (or ``omium.apikey.<key>``); the server answers
    ``omium.v1`` and never echoes the credential. ``?access_token=`` is still accepted for
    clients that can do neither. Without ``cursor`` only new events are sent; with one, the
    stream resumes after it (as far back as the tenant stream still reaches). Each message
    carries its ``cursor``. Minimum role: viewer.
    """
    principal = await _ws_principal(websocket, access_token)
    if principal is None:
        return
    if cursor is not None and not _CURSOR.fullmatch(cursor):
        await _accept(websocket)
        await websocket.close(code=1008, reason="cursor must look like 1712345678901-0")
        return
    stores = read_stores(websocket)  # type: ignore[arg-type]
    wanted = {t.strip() for t in types.split(",") if t.strip()} if types else None
    keys = RedisKeys.for_prefix(stores.prefix)
    resync: dict[str, Any] | None = None
    try:
        # Pinned before the handshake completes: whatever happens after it is delivered.
        epoch = await _epoch(stores.redis(), keys)
        resume = parse_cursor(cursor) if cursor is not None else None
        if resume is None or resume[0] != epoch:
            start = await _now(stores, principal.tenant_id)
            if resume is not None:
                resync = _resync(epoch, start, _WS_RESYNC)
        else:
            start = resume[1]
    except RedisError:
        await _accept(websocket)
        await websocket.close(code=CLOSE_UNAVAILABLE, reason="read model unavailable")
        return
    await _accept(websocket)
    if resync is not None:
        await websocket.send_json(resync)
    pump = asyncio.create_task(
        _pump(
            websocket,
            stores,
            principal,
            wanted=wanted,
            execution_id=execution_id,
            epoch=epoch,
            cursor=start,
        )
    )
    pump.add_done_callback(_settled)
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass  # clients have nothing to say; reading notices when they leave
    finally:
        pump.cancel()


def _settled(pump: asyncio.Task[None]) -> None:
    """Take the pump's outcome, so a failure is logged here and not as "never retrieved".

    A pump often fails only because its client left first (sending to it, or closing it after a
    Redis error, raises ``WebSocketDisconnect``): nothing to report then.
    """
    if pump.cancelled():
        return
    error = pump.exception()
    if error is not None and not isinstance(error, WebSocketDisconnect):
        log.warning("subscription.pump_failed", error=repr(error))


async def _now(stores: ReadStores, tenant_id: str) -> str:
    """The id of the tenant stream's newest entry ("$" in a loop would skip entries)."""
    stream = RedisKeys.for_prefix(stores.prefix).tenant_events(tenant_id)
    last: Any = await stores.redis().xrevrange(stream, count=1)
    return str(last[0][0]) if last else "0-0"


# Browsers offer these in ``Sec-WebSocket-Protocol`` (``new WebSocket(url, [...])``): the one
# protocol the server speaks, and the credential (as Kubernetes does with
# ``base64url.bearer.authorization.k8s.io.<token>``). Only ``WS_PROTOCOL`` is answered.
WS_PROTOCOL = "omium.v1"
WS_BEARER_PREFIX = "omium.bearer."
WS_API_KEY_PREFIX = "omium.apikey."


def _offered(websocket: WebSocket) -> list[str]:
    """The subprotocols the client offered, in its order."""
    header = websocket.headers.get("sec-websocket-protocol", "")
    return [p.strip() for p in header.split(",") if p.strip()]


async def _accept(websocket: WebSocket) -> None:
    """Complete the handshake, answering ``omium.v1`` when the client offered it.

    A browser that offered subprotocols fails a handshake whose answer names none of them, so
    the fixed protocol is echoed (never the one that carries the credential).
    """
    subprotocol = WS_PROTOCOL if WS_PROTOCOL in _offered(websocket) else None
    await websocket.accept(subprotocol=subprotocol)


def _protocol_credentials(websocket: WebSocket) -> tuple[list[str], list[str]]:
    """The bearer tokens and API keys offered as subprotocols."""
    offered = _offered(websocket)
    tokens = [p[len(WS_BEARER_PREFIX) :] for p in offered if p.startswith(WS_BEARER_PREFIX)]
    keys = [p[len(WS_API_KEY_PREFIX) :] for p in offered if p.startswith(WS_API_KEY_PREFIX)]
    return tokens, keys


async def _ws_principal(websocket: WebSocket, access_token: str | None) -> Principal | None:
    """The caller, or ``None`` after accepting and closing the socket with the reason.

    Exactly one credential: a bearer token (``Authorization``, the ``omium.bearer.``
    subprotocol or ``?access_token=``) or an API key (``X-API-Key`` or the ``omium.apikey.``
    subprotocol); two of them, even equal, are refused like none.
    """
    services = websocket.app.state.services
    bearer = websocket.headers.get("authorization", "")
    protocol_tokens, protocol_keys = _protocol_credentials(websocket)
    tokens = [
        *([access_token] if access_token else []),
        *([bearer[7:]] if bearer.lower().startswith("bearer ") else []),
        *protocol_tokens,
    ]
    header_key = websocket.headers.get("x-api-key")
    api_keys = [*([header_key] if header_key is not None else []), *protocol_keys]
    try:
        if len(tokens) + len(api_keys) != 1:
            raise PermissionError("send one credential: a bearer token or an API key")
        if api_keys:
            principal: Principal = await services.api_keys.authenticate(api_keys[0])
        else:
            principal = await services.tokens.verify(tokens[0])
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
    await _accept(websocket)
    await websocket.close(code=code, reason=reason)


_WS_RESYNC = "read the state you need again; events from now on follow"


async def _pump(
    websocket: WebSocket,
    stores: ReadStores,
    principal: Principal,
    *,
    wanted: set[str] | None,
    execution_id: str | None,
    epoch: int,
    cursor: str,
) -> None:
    keys = RedisKeys.for_prefix(stores.prefix)
    stream = keys.tenant_events(principal.tenant_id)
    client = stores.redis()
    try:
        while True:
            found: Any = await client.xread(
                {stream: cursor}, count=_BATCH, block=int(HEARTBEAT_S * 1000)
            )
            now = await _epoch(client, keys)
            if now != epoch:  # rebuilt meanwhile: what was read may be the new stream's
                epoch, cursor = now, await _now(stores, principal.tenant_id)
                await websocket.send_json(_resync(epoch, cursor, _WS_RESYNC))
                continue
            for entry_id, fields in found[0][1] if found else ():
                cursor = entry_id
                if wanted is not None and fields.get("event_type") not in wanted:
                    continue
                if execution_id is not None and fields.get("execution_id") != execution_id:
                    continue
                await websocket.send_json(_entry(epoch, entry_id, fields))
    except RedisError as exc:
        log.warning("subscription.redis_error", error=str(exc), stream=stream)
        await websocket.close(code=CLOSE_UNAVAILABLE, reason="read model unavailable")
