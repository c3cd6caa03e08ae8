"""What the HTTP providers share: the call itself (:class:`HttpProvider`), reading JSON bodies
and ``Retry-After`` headers."""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from omium.sdk.providers._retry import RetryPolicy, acall_with_retries, call_with_retries
from omium.sdk.providers._types import (
    Completion,
    LLMProvider,
    Message,
    MessageLike,
    Tool,
    to_messages,
)
from omium.sdk.providers.errors import (
    MalformedResponseError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)

MAX_ERROR_TEXT = 300
"""Most characters of a server's error text quoted in an error."""

CONNECT_TIMEOUT_S = 10.0
"""Longest wait for a connection, whatever is left of the call's timeout."""


def json_object(response: httpx.Response, provider: str, model: str) -> dict[str, Any]:
    """The response's body as a JSON object.

    Raises:
        MalformedResponseError: The body is not JSON, or not an object.
    """
    try:
        payload = response.json()
    except ValueError:
        raise MalformedResponseError(
            f"HTTP {response.status_code} body is not JSON: {response.text[:MAX_ERROR_TEXT]!r}",
            provider=provider,
            model=model,
            status_code=response.status_code,
        ) from None
    if not isinstance(payload, dict):
        raise MalformedResponseError(
            "the response is not a JSON object", provider=provider, model=model
        )
    return payload


def retry_after_s(headers: httpx.Headers) -> float | None:
    """Seconds the server asked to wait: ``retry-after-ms``, else ``retry-after`` (seconds or an
    HTTP date); None when it said nothing usable.
    """
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(float(milliseconds) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(moment.timestamp() - time.time(), 0.0)


class HttpProvider(LLMProvider):
    """A provider whose call is one JSON ``POST`` to ``path``: the HTTP clients, retries within a
    call's timeout and transport errors, shared by the OpenAI-compatible and Anthropic providers.

    A subclass sets ``name``, ``path``, ``base_url``, ``timeout_s``, ``retry`` and ``_headers``
    (private: they hold the API key), and says how a request body is built (``_body``) and how an
    answer is read (``_completion``).
    """

    name: str
    path: str
    base_url: str
    timeout_s: float
    retry: RetryPolicy
    _headers: dict[str, str]
    _client: httpx.Client | None = None
    _async_client: httpx.AsyncClient | None = None
    _async_loop: asyncio.AbstractEventLoop | None = None

    def complete(
        self,
        messages: Sequence[MessageLike],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        timeout_s: float | None = None,
        agent: str | None = None,
        step_id: str | None = None,
        tools: Sequence[Tool] | None = None,
    ) -> Completion:
        """POST the call to ``path`` (see :meth:`LLMProvider.complete`)."""
        chat = to_messages(messages)
        body = self._body(chat, model, max_tokens, temperature, tools)
        if self._client is None:
            self._client = httpx.Client(base_url=self.base_url, headers=self._headers)
        client = self._client

        def attempt(time_left: float) -> Completion:
            started = time.perf_counter()
            try:
                response = client.post(self.path, json=body, timeout=_timeout(time_left))
            except httpx.HTTPError as exc:
                raise self._transport_error(exc, model, time_left) from exc
            return self._completion(response, chat, model, started)

        total = self.timeout_s if timeout_s is None else timeout_s
        return call_with_retries(attempt, policy=self.retry, timeout_s=total)

    async def acomplete(
        self,
        messages: Sequence[MessageLike],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        timeout_s: float | None = None,
        agent: str | None = None,
        step_id: str | None = None,
        tools: Sequence[Tool] | None = None,
    ) -> Completion:
        """POST the call to ``path`` without blocking the event loop (same errors)."""
        chat = to_messages(messages)
        body = self._body(chat, model, max_tokens, temperature, tools)
        client = self._client_for_this_loop()

        async def attempt(time_left: float) -> Completion:
            started = time.perf_counter()
            try:
                response = await client.post(self.path, json=body, timeout=_timeout(time_left))
            except httpx.HTTPError as exc:
                raise self._transport_error(exc, model, time_left) from exc
            return self._completion(response, chat, model, started)

        total = self.timeout_s if timeout_s is None else timeout_s
        return await acall_with_retries(attempt, policy=self.retry, timeout_s=total)

    def close(self) -> None:
        """Close the synchronous connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close both connection pools."""
        self.close()
        if self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None

    @abstractmethod
    def _body(
        self,
        chat: list[Message],
        model: str,
        max_tokens: int | None,
        temperature: float | None,
        tools: Sequence[Tool] | None,
    ) -> dict[str, Any]:
        """The JSON request body of a call."""

    @abstractmethod
    def _completion(
        self, response: httpx.Response, chat: list[Message], model: str, started: float
    ) -> Completion:
        """The answer as a completion, or the typed error it carries."""

    def _client_for_this_loop(self) -> httpx.AsyncClient:
        # An AsyncClient's connections belong to the loop that opened them.
        loop = asyncio.get_running_loop()
        if self._async_client is None or self._async_loop is not loop:
            self._async_client = httpx.AsyncClient(base_url=self.base_url, headers=self._headers)
            self._async_loop = loop
        return self._async_client

    def _transport_error(self, exc: httpx.HTTPError, model: str, timeout: float) -> ProviderError:
        if isinstance(exc, httpx.TimeoutException):
            return ProviderTimeoutError(
                f"no answer within {timeout:.3g}s ({type(exc).__name__})",
                provider=self.name,
                model=model,
            )
        return ProviderUnavailableError(
            f"cannot reach {self.base_url}: {type(exc).__name__}: {exc}",
            provider=self.name,
            model=model,
        )


def _timeout(total: float) -> httpx.Timeout:
    return httpx.Timeout(total, connect=min(total, CONNECT_TIMEOUT_S))
