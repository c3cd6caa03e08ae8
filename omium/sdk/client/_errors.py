"""Errors the client raises: the gateway's problem details as typed exceptions.

Every non-2xx answer becomes an :class:`OmiumAPIError` (or the subclass for its status) carrying
the RFC 9457 members: ``status``, ``type``, ``title``, ``detail``, ``instance`` and every other
member as ``extensions``. Callers branch on the class or on ``slug`` (the last part of ``type``),
never on message text.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from omium.kernel.errors import OmiumError

_STANDARD_MEMBERS = frozenset({"type", "title", "status", "detail", "instance"})


class OmiumClientError(OmiumError):
    """Root of the client's errors."""


class OmiumConnectionError(OmiumClientError):
    """The gateway could not be reached (after the configured retries).

    Attributes:
        method: The HTTP method of the request.
        url: The URL requested.
    """

    def __init__(self, message: str, *, method: str, url: str) -> None:
        """Build the error for one request that never got an answer."""
        self.method = method
        self.url = url
        super().__init__(message)


class CompletionTimeoutError(OmiumClientError):
    """A run did not end within the time ``wait_for_completion`` was given.

    Attributes:
        execution_id: The run waited for.
        state: Its state when the wait gave up.
        timeout_s: The time waited.
    """

    def __init__(self, execution_id: str, *, state: str, timeout_s: float) -> None:
        """Build the error for a run still ``state`` after ``timeout_s``."""
        self.execution_id = execution_id
        self.state = state
        self.timeout_s = timeout_s
        super().__init__(f"execution {execution_id} is still {state} after {timeout_s:g} s")


class OmiumAPIError(OmiumClientError):
    """The gateway answered with an error (a problem details document).

    Attributes:
        status: The HTTP status.
        type: The problem type URI (``urn:omium:problem:not-found``).
        title: Short summary of the problem type.
        detail: What went wrong with this request.
        instance: The request path.
        extensions: Every other member (``reason``, ``aggregate_id``, ``retry_after`` ...).
        request_id: The gateway's ``X-Request-ID`` of the failed request, for its logs.
    """

    def __init__(
        self,
        *,
        status: int,
        type: str = "about:blank",
        title: str = "",
        detail: str = "",
        instance: str | None = None,
        extensions: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        """Build the error from the members of a problem document."""
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.instance = instance
        self.extensions = dict(extensions or {})
        self.request_id = request_id
        summary = f"{status} {title or 'error'}"
        super().__init__(f"{summary}: {detail}" if detail else summary)

    @property
    def slug(self) -> str:
        """The last segment of ``type`` (``not-found``, ``invalid-transition`` ...)."""
        return self.type.rsplit(":", 1)[-1].rsplit("/", 1)[-1]

    @property
    def reason(self) -> str | None:
        """The ``reason`` extension, when the problem has one."""
        value = self.extensions.get("reason")
        return value if isinstance(value, str) else None


class InvalidRequestError(OmiumAPIError):
    """The request was refused as malformed or invalid (400, 413, 415, 422)."""


class UnauthorizedError(OmiumAPIError):
    """No valid credentials (401); ``reason`` says why (``expired``, ``invalid_api_key`` ...)."""


class ForbiddenError(OmiumAPIError):
    """The caller's role is too low for the route (403)."""


class NotFoundError(OmiumAPIError):
    """No such resource in the caller's tenant (404)."""


class ConflictError(OmiumAPIError):
    """Refused by the aggregate's state or a concurrent change (409)."""


class CheckpointPrunedError(OmiumAPIError):
    """The checkpoint was pruned by its workflow's retention (410 ``checkpoint-pruned``).

    Its record stays in the run's history, its state does not: nothing can roll back to it,
    fork from it (without an edited state) or read it. It is gone, not corrupt.
    """

    @property
    def checkpoint_id(self) -> str | None:
        """The pruned checkpoint."""
        value = self.extensions.get("checkpoint_id")
        return value if isinstance(value, str) else None

    @property
    def checksum(self) -> str | None:
        """The SHA-256 its state had."""
        value = self.extensions.get("checksum")
        return value if isinstance(value, str) else None


class RateLimitedError(OmiumAPIError):
    """A rate-limit bucket is empty (429), still so after the client's retries.

    Attributes:
        retry_after: Seconds the gateway asked to wait (from ``Retry-After``), if it said.
    """

    @property
    def retry_after(self) -> float | None:
        """Seconds to wait before trying again."""
        return _seconds(self.extensions.get("retry_after"))


class ServiceUnavailableError(OmiumAPIError):
    """A backing service is down (503), still so after the client's retries."""

    @property
    def retry_after(self) -> float | None:
        """Seconds to wait before trying again, when the gateway said."""
        return _seconds(self.extensions.get("retry_after"))


class ServerError(OmiumAPIError):
    """The gateway failed (5xx other than 503); ``request_id`` finds the cause in its logs."""


_BY_STATUS: dict[int, type[OmiumAPIError]] = {
    400: InvalidRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    410: CheckpointPrunedError,
    413: InvalidRequestError,
    415: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}


def error_class(status: int) -> type[OmiumAPIError]:
    """The exception class for an error status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else OmiumAPIError


def error_from_response(response: httpx.Response) -> OmiumAPIError:
    """Turn an error response into its typed exception (problem details when the body has them).

    Args:
        response: A response with a 4xx/5xx status whose body has been read.
    """
    problem = _problem_body(response)
    extensions = {k: v for k, v in problem.items() if k not in _STANDARD_MEMBERS}
    if "retry_after" not in extensions and "Retry-After" in response.headers:
        extensions["retry_after"] = response.headers["Retry-After"]
    status = response.status_code
    return error_class(status)(
        status=status,
        type=str(problem.get("type", "about:blank")),
        title=str(problem.get("title", response.reason_phrase)),
        detail=str(problem.get("detail", "")),
        instance=problem.get("instance"),
        extensions=extensions,
        request_id=response.headers.get("X-Request-ID"),
    )


def _problem_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        # Not JSON (a proxy's HTML page): keep a short excerpt as the detail.
        return {"detail": response.text[:200]}
    return body if isinstance(body, dict) else {"detail": str(body)[:200]}


def _seconds(value: object) -> float | None:
    try:
        return None if value is None else max(0.0, float(str(value)))
    except ValueError:
        return None
