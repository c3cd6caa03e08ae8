"""The tenant's event stream over WebSocket (``/api/v1/events/ws``): URL, refusals, resuming.

The gateway closes a refused socket with a code that stands for an HTTP status (4401, 4403,
4429, 4503; 1008 for a bad cursor). :class:`Subscription` turns those into the client's typed
errors, or into a wait before reconnecting (rate limited, read model unavailable, dropped), and
remembers the last ``cursor`` delivered, so a reconnection resumes right after it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urlencode

from omium.sdk.client._config import ClientConfig
from omium.sdk.client._errors import (
    ForbiddenError,
    InvalidRequestError,
    OmiumAPIError,
    OmiumConnectionError,
    RateLimitedError,
    ServiceUnavailableError,
    UnauthorizedError,
)
from omium.sdk.client._http import API, USER_AGENT
from omium.sdk.client._read_models import RunEvent

PATH = f"{API}/events/ws"
_FATAL: dict[int, tuple[type[OmiumAPIError], int, str]] = {
    4401: (UnauthorizedError, 401, "unauthenticated"),
    4403: (ForbiddenError, 403, "forbidden"),
    1008: (InvalidRequestError, 400, "malformed-request"),
}
_RETRIED: dict[int, tuple[type[OmiumAPIError], int, str]] = {
    4429: (RateLimitedError, 429, "rate-limited"),
    4503: (ServiceUnavailableError, 503, "store-unavailable"),
}


@dataclass
class Subscription:
    """One tenant subscription across reconnections.

    Attributes:
        config: The client's configuration (URL, credential, retries).
        types: Event types to receive (``None``: all).
        execution_id: Only this run's events.
        cursor: Resume after this cursor (``None``: only events from now on).
        failures: Connections in a row that ended without delivering anything.
    """

    config: ClientConfig
    types: list[str] | None = None
    execution_id: str | None = None
    cursor: str | None = None
    failures: int = 0
    _delivered: bool = field(default=False, repr=False)

    def url(self) -> str:
        """The WebSocket URL of the next connection (with the resume cursor)."""
        base = self.config.base_url.rstrip("/")
        base = "wss://" + base[8:] if base.startswith("https://") else "ws://" + base[7:]
        query = {
            "types": ",".join(self.types) if self.types else None,
            "execution_id": self.execution_id,
            "cursor": self.cursor,
        }
        encoded = urlencode({k: v for k, v in query.items() if v is not None})
        return f"{base}{PATH}" + (f"?{encoded}" if encoded else "")

    def headers(self) -> dict[str, str]:
        """The credential and user agent headers."""
        return {"User-Agent": USER_AGENT, **self.config.auth_headers(), **self.config.headers}

    def received(self, message: str | bytes) -> RunEvent:
        """Parse a message and remember its cursor."""
        event = RunEvent.model_validate(json.loads(message))
        self.cursor = event.cursor
        self.failures = 0
        self._delivered = True
        return event

    def closed(self, code: int | None, reason: str) -> float:
        """Seconds to wait before reconnecting after the socket closed with ``code``.

        Raises:
            OmiumAPIError: A refusal that reconnecting cannot fix (401, 403, bad cursor), or a
                retried one (429, 503) once ``max_attempts`` connections in a row failed.
        """
        if code in _FATAL:
            raise _error(*_FATAL[code], reason)
        self.failures = 0 if self._delivered else self.failures + 1
        self._delivered = False
        if code in _RETRIED and self.failures >= self.config.max_attempts:
            raise _error(*_RETRIED[code], reason)
        if self.failures >= self.config.max_attempts:
            raise OmiumConnectionError(
                f"{PATH} closed {self.failures} times in a row (code {code}: {reason})",
                method="GET",
                url=PATH,
            )
        return self._backoff()

    def failed(self, exc: Exception) -> float:
        """Seconds to wait after a connection could not be opened.

        Raises:
            OmiumConnectionError: ``max_attempts`` connections in a row failed.
        """
        self.failures += 1
        if self.failures >= self.config.max_attempts:
            raise OmiumConnectionError(
                f"{PATH} failed {self.failures} times in a row: {type(exc).__name__}: {exc}",
                method="GET",
                url=PATH,
            ) from exc
        return self._backoff()

    def _backoff(self) -> float:
        delay = self.config.backoff_s * 2 ** max(0, self.failures - 1)
        return float(min(delay, self.config.max_backoff_s))


def _error(cls: type[OmiumAPIError], status: int, slug: str, reason: str) -> OmiumAPIError:
    return cls(
        status=status,
        type=f"urn:omium:problem:{slug}",
        title=slug.replace("-", " "),
        detail=reason,
        instance=PATH,
    )
