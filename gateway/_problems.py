"""RFC 9457 problem details: the one table that maps error classes to HTTP status.

Every error response of the gateway is built here. An exception is looked up by walking its class
hierarchy (most specific first) against classes registered by type: the write side's errors come
from its public ``omium.commands.errors`` module, so a renamed class fails at import, not as a
silent 500. Nothing here parses message text; extension members are copied from the error's
attributes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic
import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from omium.commands import errors as commands_errors
from omium.gateway import errors as gw
from omium.kernel.errors import (
    ConcurrencyError,
    ConfigurationError,
    DomainError,
    OmiumError,
    PersistenceError,
)

log = structlog.get_logger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
DEFAULT_TYPE_BASE = "urn:omium:problem:"

ErrorKey = type[BaseException]
Extras = Callable[[BaseException], Mapping[str, Any]]
Headers = Callable[[BaseException], Mapping[str, str]]


class ProblemResponse(JSONResponse):
    """A JSON response served as ``application/problem+json``."""

    media_type = PROBLEM_MEDIA_TYPE


@dataclass(frozen=True)
class ProblemSpec:
    """How one class of error is rendered.

    Attributes:
        status: The HTTP status.
        slug: The last part of the problem ``type`` URI (``"not-found"``).
        title: A short summary that never changes between occurrences.
        extensions: Attribute names of the error copied into the body when present.
        expose_detail: Whether ``str(error)`` may be shown as ``detail``; false for server faults,
            whose messages may hold internals (DSNs, hosts, stack details).
        extras: Computes further extension members from the error.
        headers: Computes response headers from the error (``Retry-After`` ...).
    """

    status: int
    slug: str
    title: str
    extensions: tuple[str, ...] = ()
    expose_detail: bool = True
    extras: Extras | None = None
    headers: Headers | None = None


class ProblemTable:
    """Error class (or class name) → ``ProblemSpec``, looked up along the class hierarchy."""

    def __init__(self) -> None:
        self._by_type: dict[type[BaseException], ProblemSpec] = {}
        self._by_status: dict[int, ProblemSpec] = {}

    def register(self, error: ErrorKey, spec: ProblemSpec) -> None:
        """Map an error class to a spec."""
        self._by_type[error] = spec

    def register_status(self, status: int, spec: ProblemSpec) -> None:
        """Map a framework ``HTTPException`` status (404 unknown path, 405 ...) to a spec."""
        self._by_status[status] = spec

    def lookup(self, exc: BaseException) -> ProblemSpec:
        """The spec of the most specific registered class of ``exc``; 500 when none matches."""
        if isinstance(exc, StarletteHTTPException):
            return self._by_status.get(exc.status_code) or _generic_http_spec(exc.status_code)
        for cls in type(exc).__mro__:
            if cls in self._by_type:
                return self._by_type[cls]
        return INTERNAL_ERROR

    def status_of(self, exc: BaseException) -> int:
        """The HTTP status ``exc`` is answered with."""
        return self.lookup(exc).status

    def copy(self) -> ProblemTable:
        """An independent copy (an app may add entries without touching the defaults)."""
        clone = ProblemTable()
        clone._by_type.update(self._by_type)
        clone._by_status.update(self._by_status)
        return clone


INTERNAL_ERROR = ProblemSpec(
    status=500,
    slug="internal-error",
    title="Internal server error",
    expose_detail=False,
)


def _generic_http_spec(status: int) -> ProblemSpec:
    return ProblemSpec(status=status, slug=f"http-{status}", title=f"HTTP {status}")


def _validation_errors(exc: BaseException) -> dict[str, Any]:
    raw = exc.errors() if isinstance(exc, RequestValidationError | pydantic.ValidationError) else []
    # ``input`` and ``ctx`` are dropped: they echo what the client sent (maybe secrets, maybe
    # megabytes) and may hold objects that are not JSON.
    errors = [
        {"loc": list(item.get("loc", ())), "msg": item.get("msg", ""), "type": item.get("type")}
        for item in raw
    ]
    return {"errors": errors}


def _rate_limit_headers(exc: BaseException) -> dict[str, str]:
    assert isinstance(exc, gw.RateLimitedError)
    return {
        "Retry-After": str(exc.retry_after),
        "RateLimit-Limit": str(exc.limit),
        "RateLimit-Remaining": str(exc.remaining),
        "RateLimit-Reset": str(exc.reset_after),
    }


def _authenticate_header(exc: BaseException) -> dict[str, str]:
    reason = getattr(exc, "reason", "missing")
    if reason == "missing":
        return {"WWW-Authenticate": 'Bearer realm="omium"'}
    return {"WWW-Authenticate": 'Bearer realm="omium", error="invalid_token"'}


def _retry_soon(exc: BaseException) -> dict[str, str]:
    return {"Retry-After": "1"}


def _spec(status: int, slug: str, title: str, *extensions: str, **kwargs: Any) -> ProblemSpec:
    return ProblemSpec(status=status, slug=slug, title=title, extensions=extensions, **kwargs)


def default_table() -> ProblemTable:
    """The gateway's table: its own errors, the kernel's bases, the write side's errors."""
    table = ProblemTable()
    for error, spec in _TYPE_ENTRIES:
        table.register(error, spec)
    for error, spec in _COMMAND_ENTRIES:
        table.register(error, spec)
    for status, spec in _STATUS_ENTRIES:
        table.register_status(status, spec)
    return table


_VALIDATION = _spec(422, "validation-error", "Request is invalid", extras=_validation_errors)

_TYPE_ENTRIES: list[tuple[ErrorKey, ProblemSpec]] = [
    (RequestValidationError, _VALIDATION),
    (pydantic.ValidationError, _VALIDATION),
    (gw.MalformedRequestError, _spec(400, "malformed-request", "Request is malformed", "reason")),
    (
        gw.RequestTooLargeError,
        _spec(413, "request-too-large", "Request body too large", "max_bytes"),
    ),
    (
        gw.HeadersTooLargeError,
        _spec(
            431,
            "headers-too-large",
            "Request header fields too large",
            "max_bytes",
            "max_count",
        ),
    ),
    (
        gw.UnsupportedMediaTypeError,
        _spec(415, "unsupported-media-type", "Unsupported media type", "content_type"),
    ),
    (
        gw.AuthenticationError,
        _spec(
            401,
            "unauthenticated",
            "Authentication required",
            "reason",
            headers=_authenticate_header,
        ),
    ),
    (
        gw.PermissionDeniedError,
        _spec(403, "forbidden", "Permission denied", "required_role", "actual_role"),
    ),
    (gw.ApiKeyNotFoundError, _spec(404, "not-found", "Resource not found", "key_id")),
    (
        gw.RateLimitedError,
        _spec(
            429,
            "rate-limited",
            "Too many requests",
            "retry_after",
            "scope",
            headers=_rate_limit_headers,
        ),
    ),
    (
        gw.RateLimiterUnavailableError,
        _spec(503, "rate-limiter-unavailable", "Rate limiter unavailable", headers=_retry_soon),
    ),
    (
        gw.IdentityProviderUnavailableError,
        _spec(
            503,
            "identity-provider-unavailable",
            "Identity provider unavailable",
            headers=_retry_soon,
        ),
    ),
    (
        gw.GatewayOverloadedError,
        _spec(503, "overloaded", "Gateway overloaded", "limit", headers=_retry_soon),
    ),
    (
        gw.DependencyUnavailableError,
        _spec(503, "not-ready", "Service not ready", "checks", headers=_retry_soon),
    ),
    # Kernel bases: anything the write side adds later lands on a sensible status.
    (DomainError, _spec(409, "domain-rule-violated", "Command refused by a domain rule")),
    (
        ConcurrencyError,
        _spec(
            409,
            "conflict",
            "Concurrent modification",
            "aggregate_id",
            "expected_version",
            "actual_version",
        ),
    ),
    (
        PersistenceError,
        _spec(
            503,
            "store-unavailable",
            "A backing store is unavailable",
            expose_detail=False,
            headers=_retry_soon,
        ),
    ),
    (ConfigurationError, INTERNAL_ERROR),
]

# The write side's errors (``omium.commands.errors``), more specific than the kernel bases above.
_COMMAND_ENTRIES: list[tuple[ErrorKey, ProblemSpec]] = [
    (
        commands_errors.NotFoundError,
        _spec(404, "not-found", "Resource not found", "aggregate_id", "aggregate_type"),
    ),
    (
        commands_errors.AlreadyExistsError,
        _spec(409, "already-exists", "Resource already exists", "aggregate_id", "aggregate_type"),
    ),
    (
        commands_errors.InvalidTransitionError,
        _spec(
            409,
            "invalid-transition",
            "Command not allowed in this state",
            "current_state",
            "command",
            "aggregate_id",
        ),
    ),
    (
        commands_errors.CheckpointPrunedError,
        _spec(
            410,
            "checkpoint-pruned",
            "Checkpoint was pruned",
            "reason",
            "checkpoint_id",
            "execution_id",
            "checksum",
        ),
    ),
    (
        commands_errors.InvalidCommandError,
        _spec(422, "invalid-command", "Command is invalid", "reason", "field", "details"),
    ),
    (
        commands_errors.InvalidPolicyError,
        _spec(
            422, "invalid-policy", "Policy does not compile", "reason", "field", "compiler_message"
        ),
    ),
    (
        commands_errors.IdempotencyKeyReusedError,
        _spec(
            422,
            "idempotency-key-reused",
            "Idempotency key reused with another request",
            "reason",
            "key",
        ),
    ),
    (
        commands_errors.VoteRejectedError,
        _spec(409, "vote-rejected", "Vote refused", "reason", "round_id", "participant"),
    ),
    (
        commands_errors.ConflictError,
        _spec(
            409,
            "conflict",
            "Concurrent modification",
            "aggregate_id",
            "expected_version",
            "actual_version",
        ),
    ),
]

_STATUS_ENTRIES: list[tuple[int, ProblemSpec]] = [
    (400, _spec(400, "malformed-request", "Request is malformed")),
    (401, _spec(401, "unauthenticated", "Authentication required")),
    (403, _spec(403, "forbidden", "Permission denied")),
    (404, _spec(404, "not-found", "Resource not found")),
    (405, _spec(405, "method-not-allowed", "Method not allowed")),
    (406, _spec(406, "not-acceptable", "Not acceptable")),
    (409, _spec(409, "conflict", "Conflict")),
    (413, _spec(413, "request-too-large", "Request body too large")),
    (415, _spec(415, "unsupported-media-type", "Unsupported media type")),
    (422, _VALIDATION),
    (429, _spec(429, "rate-limited", "Too many requests")),
    (503, _spec(503, "service-unavailable", "Service unavailable", expose_detail=False)),
]

problem_table = default_table()


def register_error(
    error: ErrorKey,
    *,
    status: int,
    title: str,
    slug: str | None = None,
    extensions: tuple[str, ...] = (),
    expose_detail: bool | None = None,
) -> None:
    """Map an error class to a status, for every app.

    Args:
        error: The error class (subclasses match unless registered themselves).
        status: The HTTP status to answer with.
        title: A short summary that does not change between occurrences.
        slug: The problem type's last part; derived from the status's default when omitted.
        extensions: Attribute names copied into the body when present.
        expose_detail: Show ``str(error)`` as ``detail``; defaults to true for 4xx only.
    """
    problem_table.register(
        error,
        ProblemSpec(
            status=status,
            slug=slug or _generic_http_spec(status).slug,
            title=title,
            extensions=extensions,
            expose_detail=status < 500 if expose_detail is None else expose_detail,
        ),
    )


def _normalize(exc: BaseException) -> BaseException:
    # Unparseable JSON reaches us as a validation error whose structured ``type`` says so.
    if isinstance(exc, RequestValidationError) and any(
        item.get("type") == "json_invalid" for item in exc.errors()
    ):
        return gw.MalformedRequestError("request body is not valid JSON", reason="json_invalid")
    return exc


def _detail(spec: ProblemSpec, exc: BaseException) -> str:
    if not spec.expose_detail:
        return spec.title
    if isinstance(exc, StarletteHTTPException):
        return exc.detail if isinstance(exc.detail, str) else spec.title
    if isinstance(exc, RequestValidationError | pydantic.ValidationError):
        return "the request does not match the expected schema; see errors"
    return str(exc) or spec.title


def _extension_members(spec: ProblemSpec, exc: BaseException) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for name in spec.extensions:
        value = getattr(exc, name, None)
        if value is not None:
            members[name] = value
    if spec.extras is not None:
        members.update(spec.extras(exc))
    encoded: dict[str, Any] = jsonable_encoder(members)
    return encoded


def problem_body(
    spec: ProblemSpec, exc: BaseException, *, instance: str, type_base: str
) -> dict[str, Any]:
    """The JSON body of a problem: standard members first, then extension members."""
    body = {
        "type": f"{type_base}{spec.slug}",
        "title": spec.title,
        "status": spec.status,
        "detail": _detail(spec, exc),
        "instance": instance,
    }
    for name, value in _extension_members(spec, exc).items():
        body.setdefault(name, value)
    return body


def render_problem(
    exc: BaseException,
    *,
    instance: str,
    table: ProblemTable | None = None,
    type_base: str = DEFAULT_TYPE_BASE,
    request_id: str | None = None,
) -> ProblemResponse:
    """Build the problem response for ``exc`` (used by handlers and by ASGI middleware).

    Server faults (5xx) carry ``request_id`` in the body; the cause is logged under the same id.
    """
    exc = _normalize(exc)
    spec = (table or problem_table).lookup(exc)
    body = problem_body(spec, exc, instance=instance, type_base=type_base)
    headers: dict[str, str] = {}
    if isinstance(exc, StarletteHTTPException) and exc.headers:
        headers.update(exc.headers)
    if spec.headers is not None:
        headers.update(spec.headers(exc))
    if spec.status >= 500:
        # The client sees only this id; the log has the cause under the same id.
        request_id = request_id or uuid.uuid4().hex
        body["request_id"] = request_id
        headers.setdefault("X-Request-ID", request_id)
        if spec.status == 500:
            log.error(
                "request failed", request_id=request_id, error=type(exc).__name__, exc_info=exc
            )
        else:
            log.warning(
                "request refused: dependency down",
                request_id=request_id,
                status=spec.status,
                error=type(exc).__name__,
            )
    return ProblemResponse(body, status_code=spec.status, headers=headers)


def install_problem_handlers(app: FastAPI, *, table: ProblemTable, type_base: str) -> None:
    """Route every exception the app can raise through ``render_problem``."""

    async def handle(request: Request, exc: Exception) -> ProblemResponse:
        response = render_problem(
            exc,
            instance=request.url.path,
            table=table,
            type_base=type_base,
            request_id=getattr(request.state, "request_id", None),
        )
        # Read by the audit middleware: why a command was refused.
        request.state.problem_slug = table.lookup(_normalize(exc)).slug
        return response

    app.add_exception_handler(StarletteHTTPException, handle)
    app.add_exception_handler(RequestValidationError, handle)
    app.add_exception_handler(pydantic.ValidationError, handle)
    app.add_exception_handler(OmiumError, handle)
    # Starlette installs the ``Exception`` handler in its outermost middleware, so it also catches
    # faults raised by other middleware.
    app.add_exception_handler(Exception, handle)
