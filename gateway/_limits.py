"""Checks done before anything parses a request: header size (431), query text (400), body size
(413), media type (415) and JSON nesting depth (400).

A query string must decode to UTF-8 text without NUL: PostgreSQL text cannot hold NUL, so a
filter carrying one would otherwise fail deep in a read model query instead of as bad input.

The body is read here, counted against the limit while it streams in, and handed on only when
complete: a client announcing a small ``Content-Length`` (or sending chunked) cannot slip a
larger body past the limit, and nothing downstream holds more than ``max_body_bytes``.

A JSON body nested deeper than ``max_json_depth`` is refused before it is parsed: Python's
parser recurses (about 1,000 levels end in a ``RecursionError``), and a document a few hundred
levels deep would be stored, then fail to serialize when read back.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omium.gateway._problems import ProblemTable, render_problem
from omium.gateway.errors import (
    GatewayError,
    HeadersTooLargeError,
    MalformedRequestError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
)

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# A JSON string (its brackets do not nest anything), and what is left that is not a bracket.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def json_depth_exceeds(body: bytes, max_depth: int) -> bool:
    """Whether a JSON text nests arrays/objects deeper than ``max_depth``.

    Strings are cut out and everything but brackets dropped (both at C speed); then each pass
    removes the innermost pairs, so after ``max_depth`` passes only what nests deeper is left.
    Malformed JSON is left to the parser (this answers about depth only).
    """
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    brackets = brackets.replace(b"{", b"[").replace(b"}", b"]")
    too_deep = b"[" * (max_depth + 1)
    for _ in range(max_depth):
        if not brackets:
            return False
        if too_deep in brackets:
            return True  # the usual attack, found at once
        brackets = brackets.replace(b"[]", b"")
    return b"[]" in brackets


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
        pairs = parse_qsl(
            raw_query.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="strict"
        )
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
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        table: ProblemTable,
        type_base: str,
        max_header_bytes: int = 16 * 1024,
        max_headers: int = 100,
        max_json_depth: int = 64,
    ) -> None:
        self._app = app
        self._max = max_body_bytes
        self._table = table
        self._type_base = type_base
        self._max_header_bytes = max_header_bytes
        self._max_headers = max_headers
        self._max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check and buffer the body, then call the app with a replaying ``receive``."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        raw_headers = scope["headers"]
        error: GatewayError | None = self._check_header_size(raw_headers)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw_headers}
        if error is None:
            error = query_problem(scope.get("query_string", b""))
        if error is None:
            error = self._check_headers(scope["method"], headers)
        body: bytes | None = None
        if error is None:
            body, error = await self._read_body(receive)
        if error is None and body and is_json(headers.get("content-type")):
            error = self._check_depth(body)
        if error is not None:
            await self._refuse(scope, receive, send, error)
            return
        await self._app(scope, _replay(body or b"", receive), send)

    def _check_depth(self, body: bytes) -> MalformedRequestError | None:
        if json_depth_exceeds(body, self._max_json_depth):
            return MalformedRequestError(
                f"JSON body is nested deeper than {self._max_json_depth} levels",
                reason="json_depth",
            )
        return None

    def _check_header_size(self, raw: list[tuple[bytes, bytes]]) -> HeadersTooLargeError | None:
        if len(raw) > self._max_headers or (
            sum(len(name) + len(value) for name, value in raw) > self._max_header_bytes
        ):
            return HeadersTooLargeError(
                max_bytes=self._max_header_bytes, max_count=self._max_headers
            )
        return None

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

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, error: Exception) -> None:
        response = render_problem(
            error, instance=scope["path"], table=self._table, type_base=self._type_base
        )
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
