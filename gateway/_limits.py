"""Checks done before anything parses a request: query text (400), body size (413) and media
type (415).

A query string must decode to UTF-8 text without NUL: PostgreSQL text cannot hold NUL, so a
filter carrying one would otherwise fail deep in a read model query instead of as bad input.

The body is read here, counted against the limit while it streams in, and handed on only when
complete: a client announcing a small ``Content-Length`` (or sending chunked) cannot slip a
larger body past the limit, and nothing downstream holds more than ``max_body_bytes``.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway._problems import ProblemTable, render_problem
from gateway.errors import (
    GatewayError,
    MalformedRequestError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
)

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def is_json(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` is JSON (``application/json`` or ``application/*+json``)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def query_problem(raw_query: bytes) -> MalformedRequestError | None:
    """Why a raw query string cannot be used as text, or ``None`` when it can."""
    try:
        pairs = parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True,
                          encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return MalformedRequestError("query string is not UTF-8", reason="query_encoding")
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            return MalformedRequestError(
                f"query parameter {name.replace(chr(0), '')!r} contains a NUL character",
                reason="query_nul",
            )
    return None


class BodyGuardMiddleware:
    """Refuses unreadable query strings (400), oversized bodies (413) and non-JSON bodies on
    writes (415), as problems."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, table: ProblemTable, type_base: str
    ) -> None:
        self._app = app
        self._max = max_body_bytes
        self._table = table
        self._type_base = type_base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check and buffer the body, then call the app with a replaying ``receive``."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        error: GatewayError | None = query_problem(scope.get("query_string", b""))
        if error is None:
            error = self._check_headers(scope["method"], headers)
        body: bytes | None = None
        if error is None:
            body, error = await self._read_body(receive)
        if error is not None:
            await self._refuse(scope, receive, send, error)
            return
        await self._app(scope, _replay(body or b"", receive), send)

    def _check_headers(
        self, method: str, headers: dict[str, str]
    ) -> RequestTooLargeError | UnsupportedMediaTypeError | None:
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self._max:
            return RequestTooLargeError(self._max)
        has_body = (length.isdigit() and int(length) > 0) or "transfer-encoding" in headers
        content_type = headers.get("content-type")
        if method in _BODY_METHODS and has_body and not is_json(content_type):
            return UnsupportedMediaTypeError(content_type)
        return None

    async def _read_body(self, receive: Receive) -> tuple[bytes, RequestTooLargeError | None]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # Client went away; let the app see an empty body and the disconnect.
                return b"".join(chunks), None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max:
                return b"", RequestTooLargeError(self._max)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, error: Exception
    ) -> None:
        response = render_problem(error, instance=scope["path"], table=self._table,
                                  type_base=self._type_base)
        # The rest of the body is not read: ask the client to close instead of streaming it.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        # After the body, the app only waits for the disconnect: pass the real one on.
        return await receive()

    return replay
