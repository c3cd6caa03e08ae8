"""The request loop both clients share: idempotency keys, retries with backoff, error mapping.

An :class:`Op` describes one gateway call (method, path, body, how to read the answer). The
clients only differ in how they send it (``httpx.Client`` or ``httpx.AsyncClient``) and how they
sleep between tries; every decision (retry or not, how long to wait, which error) is made here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from omium.sdk.client._config import ClientConfig
from omium.sdk.client._errors import (
    OmiumAPIError,
    OmiumConnectionError,
    error_from_response,
)

T = TypeVar("T")

API = "/api/v1"
RETRY_STATUSES = frozenset({429, 503})
USER_AGENT = "omium-python-sdk"


def segment(value: object) -> str:
    """A path segment, percent-encoded (ids may hold characters a path cannot)."""
    return quote(str(value), safe="")


def _raw(response: httpx.Response) -> Any:
    return response.json() if response.content else None


@dataclass(frozen=True)
class Op(Generic[T]):
    """One call to the gateway.

    Attributes:
        method: HTTP method.
        path: Path below the base URL (``/api/v1/...``), already encoded.
        parse: Turns the successful response into the method's return value.
        json: The JSON body, if any.
        params: Query parameters (``None`` values are left out; lists repeat the key).
        command: Sends an ``Idempotency-Key`` (one per call, the same on every retry).
        headers: Extra headers for this call.
    """

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: Any = None
    params: Mapping[str, Any] | None = None
    command: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)

    def request_headers(self, idempotency_key: str | None) -> dict[str, str]:
        """This call's headers, with its idempotency key when it is a command."""
        headers = dict(self.headers)
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def query(self) -> httpx.QueryParams:
        """The query parameters, without ``None``s (a list repeats its key)."""
        pairs: list[tuple[str, str | int | float | bool | None]] = []
        for name, value in (self.params or {}).items():
            values = value if isinstance(value, list | tuple) else [value]
            pairs.extend((name, _param(v)) for v in values if v is not None)
        return httpx.QueryParams(pairs)


def _param(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def model_parser(model: Callable[..., T]) -> Callable[[httpx.Response], T]:
    """A parser validating the JSON body with a pydantic model's ``model_validate``."""
    validate = model.model_validate  # type: ignore[attr-defined]
    return lambda response: validate(response.json())  # type: ignore[no-any-return,unused-ignore]


def list_parser(model: Any) -> Callable[[httpx.Response], list[Any]]:
    """A parser for a JSON array of ``model`` items."""
    return lambda response: [model.model_validate(item) for item in response.json()]


def raw_parser(response: httpx.Response) -> Any:
    """The decoded JSON body (``None`` for an empty one)."""
    return _raw(response)


def none_parser(response: httpx.Response) -> None:
    """Ignore the body (``204 No Content``)."""
    return None


@dataclass
class Attempts:
    """Decides, try by try, whether to send a call again and how long to wait first."""

    config: ClientConfig
    op: Op[Any]
    attempt: int = 0
    idempotency_key: str | None = None

    def __post_init__(self) -> None:
        """Pick the call's idempotency key once, so every retry carries the same one."""
        if self.op.command:
            self.idempotency_key = str(uuid.uuid4())

    def next(self) -> None:
        """Count one more try."""
        self.attempt += 1

    def after_response(self, response: httpx.Response) -> float | None:
        """Seconds to wait before trying again, or ``None`` when ``response`` is final.

        Raises:
            OmiumAPIError: The response is an error that is not retried (or no tries are left).
        """
        if response.status_code < 400:
            return None
        error = error_from_response(response)
        if response.status_code not in RETRY_STATUSES or self.attempt >= self.config.max_attempts:
            raise error
        wait = self._retry_after(error)
        if wait is not None and wait > self.config.max_retry_after_s:
            raise error
        return self._backoff() if wait is None else wait

    def after_failure(self, exc: httpx.TransportError, url: str) -> float:
        """Seconds to wait before trying again after a connection failure.

        Raises:
            OmiumConnectionError: No tries are left.
        """
        if self.attempt >= self.config.max_attempts:
            raise OmiumConnectionError(
                f"{self.op.method} {url} failed after {self.attempt} tries: "
                f"{type(exc).__name__}: {exc}",
                method=self.op.method,
                url=url,
            ) from exc
        return self._backoff()

    def _backoff(self) -> float:
        delay = self.config.backoff_s * 2 ** (self.attempt - 1)
        return float(min(delay, self.config.max_backoff_s))

    @staticmethod
    def _retry_after(error: OmiumAPIError) -> float | None:
        retry_after = getattr(error, "retry_after", None)
        return retry_after if isinstance(retry_after, float) else None


def base_headers(config: ClientConfig) -> dict[str, str]:
    """Headers of every request: user agent, credential, the config's extra headers."""
    return {"User-Agent": USER_AGENT, **config.auth_headers(), **config.headers}


def timeout(config: ClientConfig) -> httpx.Timeout:
    """The per-request timeout of a config."""
    return httpx.Timeout(config.timeout_s)
