"""An OpenAI-compatible chat-completions provider over HTTP (httpx), sync and async.

Works with any server that speaks ``POST {base_url}/chat/completions`` (OpenAI, vLLM, Ollama,
LiteLLM ...). HTTP failures become typed errors the worker can recover from: 429 is a
:class:`RateLimitError` with the server's ``Retry-After``, 5xx and connection failures are
:class:`ProviderUnavailableError`, timeouts :class:`ProviderTimeoutError` (all retryable); other
4xx are :class:`ProviderRequestError` (not retryable), a prompt over the model's context window
a :class:`ContextTooLongError`. Retries within the call's timeout follow a
:class:`~omium.sdk.providers.RetryPolicy` (none by default: the worker's recovery retries steps).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

import httpx
from pydantic import SecretStr

from omium.kernel.settings import LLMSettings
from omium.sdk.providers._http import MAX_ERROR_TEXT, HttpProvider, json_object, retry_after_s
from omium.sdk.providers._pricing import PriceTable
from omium.sdk.providers._retry import (
    NO_RETRIES,
    RetryPolicy,
)
from omium.sdk.providers._tokens import count_prompt_tokens, count_tokens
from omium.sdk.providers._types import (
    Completion,
    Message,
    Tool,
    ToolCall,
)
from omium.sdk.providers.errors import (
    ContextTooLongError,
    MalformedResponseError,
    ProviderError,
    ProviderRequestError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
)


class OpenAICompatibleProvider(HttpProvider):
    """Chat completions from an OpenAI-compatible HTTP API, with token and cost accounting."""

    path = "/chat/completions"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | SecretStr | None = None,
        timeout_s: float = 60.0,
        prices: PriceTable | None = None,
        headers: Mapping[str, str] | None = None,
        name: str = "openai",
        retry: RetryPolicy = NO_RETRIES,
    ) -> None:
        """Build a provider (no connection is opened until the first call).

        Args:
            base_url: The API root, e.g. ``https://api.openai.com/v1``.
            api_key: Sent as ``Authorization: Bearer``; None for servers without auth.
            timeout_s: Default timeout of a call.
            prices: Prices per model (the built-in table by default).
            headers: Extra headers for every request.
            name: The provider name reported in completions and errors.
            retry: When a failed call is retried within its timeout (never by default).
        """
        self.name = name
        self.retry = retry
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._prices = prices or PriceTable()
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        self._headers = {"Accept": "application/json", **(headers or {})}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"

    @classmethod
    def from_settings(cls, llm: LLMSettings) -> Self:
        """Build the provider from the ``llm`` settings group (URL, key, timeout, prices)."""
        return cls(
            base_url=llm.base_url,
            api_key=llm.api_key,
            timeout_s=llm.timeout_s,
            prices=PriceTable(llm.prices),
        )

    def _body(
        self,
        chat: list[Message],
        model: str,
        max_tokens: int | None,
        temperature: float | None,
        tools: Sequence[Tool] | None,
    ) -> dict[str, Any]:
        return _request_body(chat, model, max_tokens, temperature, tools)

    def _completion(
        self, response: httpx.Response, chat: list[Message], model: str, started: float
    ) -> Completion:
        latency = time.perf_counter() - started
        if not response.is_success:
            raise _status_error(response, self.name, model)
        payload = json_object(response, self.name, model)
        text, finish_reason, tool_calls = _choice(payload, self.name, model)
        reported = payload.get("model")
        answered_by = reported if isinstance(reported, str) and reported else model
        usage = payload.get("usage")
        if not isinstance(usage, dict):
            usage = {}
        tokens_in = _count(usage, "prompt_tokens", count_prompt_tokens(m.content for m in chat))
        tokens_out = _count(usage, "completion_tokens", count_tokens(text))
        return Completion(
            text=text,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=self._prices.cost(answered_by, tokens_in, tokens_out),
            model=answered_by,
            latency_s=latency,
            provider=self.name,
            finish_reason=finish_reason,
            tool_calls=tool_calls,
        )


def _request_body(
    chat: list[Message],
    model: str,
    max_tokens: int | None,
    temperature: float | None,
    tools: Sequence[Tool] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [_message(m) for m in chat]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if temperature is not None:
        body["temperature"] = temperature
    if tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": dict(tool.input_schema),
                },
            }
            for tool in tools
        ]
    return body


def _message(message: Message) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_call_id is not None:
        wire["tool_call_id"] = message.tool_call_id
    if message.tool_calls:
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(dict(call.arguments))},
            }
            for call in message.tool_calls
        ]
    return wire


def _choice(
    payload: Mapping[str, Any], provider: str, model: str
) -> tuple[str, str | None, tuple[ToolCall, ...]]:
    try:
        choice = payload["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise MalformedResponseError(
            "the response has no choices[0].message.content", provider=provider, model=model
        ) from None
    if content is None:
        content = ""  # a reply made only of tool calls has no text
    if not isinstance(content, str):
        raise MalformedResponseError(
            "choices[0].message.content is not text", provider=provider, model=model
        )
    reason = choice.get("finish_reason")
    calls = _tool_calls(choice["message"].get("tool_calls"), provider, model)
    return content, reason if isinstance(reason, str) else None, calls


def _tool_calls(raw: Any, provider: str, model: str) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    try:
        calls = []
        for item in raw:
            arguments = json.loads(item["function"]["arguments"] or "{}")
            if not isinstance(arguments, dict):
                raise TypeError("tool arguments are not an object")
            calls.append(ToolCall(str(item["id"]), str(item["function"]["name"]), arguments))
    except (KeyError, TypeError, ValueError):
        raise MalformedResponseError(
            "choices[0].message.tool_calls is not a list of function calls",
            provider=provider,
            model=model,
        ) from None
    return tuple(calls)


def _count(usage: Mapping[str, Any], key: str, estimate: int) -> int:
    value = usage.get(key)
    # Some compatible servers omit usage: estimate rather than record zero tokens.
    return value if isinstance(value, int) and not isinstance(value, bool) else estimate


def _status_error(response: httpx.Response, provider: str, model: str) -> ProviderError:
    status = response.status_code
    detail = f"HTTP {status}: {_server_message(response)}"
    retry_after = retry_after_s(response.headers)
    options: dict[str, Any] = {"provider": provider, "model": model, "status_code": status}
    if status == 429:
        return RateLimitError(detail, retry_after=retry_after, **options)
    if status == 408:
        return ProviderTimeoutError(detail, **options)
    if status in (400, 413) and _context_exceeded(response):
        return ContextTooLongError(detail, **options)
    if 400 <= status < 500:
        return ProviderRequestError(detail, **options)
    return ProviderUnavailableError(detail, retry_after=retry_after, **options)


def _context_exceeded(response: httpx.Response) -> bool:
    # OpenAI says code "context_length_exceeded"; vLLM and others only say it in the message.
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return False
    if not isinstance(error, dict):
        return False
    message = str(error.get("message", "")).lower()
    return error.get("code") == "context_length_exceeded" or "context length" in message


def _server_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])[:MAX_ERROR_TEXT]
    return response.text[:MAX_ERROR_TEXT] or response.reason_phrase
