"""The Anthropic provider: the Messages API (``POST {base_url}/v1/messages``) over httpx.

System messages become the request's ``system``; tool calls and results become ``tool_use`` and
``tool_result`` content blocks. Tokens come from the response's ``usage`` (cache writes and reads
included, priced apart); ``stop_reason`` maps onto ``finish_reason`` (``end_turn`` → ``stop``,
``max_tokens`` → ``length``, ``tool_use`` → ``tool_calls``).

Failures are typed for recovery: 429 :class:`RateLimitError` (``retry-after`` kept), 529
:class:`OverloadedError`, other 5xx and dropped connections :class:`ProviderUnavailableError`,
a prompt over the context window :class:`ContextTooLongError`, ``stop_reason: refusal``
:class:`RefusalError`, other 4xx :class:`ProviderRequestError`. The retryable ones are retried
within the call's timeout (:class:`RetryPolicy`: 2 retries by default).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

import httpx
from pydantic import SecretStr

from omium.kernel.settings import AnthropicSettings, LLMSettings
from omium.sdk.providers._http import MAX_ERROR_TEXT, HttpProvider, json_object, retry_after_s
from omium.sdk.providers._pricing import PriceTable
from omium.sdk.providers._retry import RetryPolicy
from omium.sdk.providers._types import (
    Completion,
    Message,
    Tool,
    ToolCall,
)
from omium.sdk.providers.errors import (
    ContextTooLongError,
    MalformedResponseError,
    OverloadedError,
    ProviderError,
    ProviderRequestError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    RefusalError,
)

API_VERSION = "2023-06-01"
"""The ``anthropic-version`` this provider speaks by default."""

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}
_CONTEXT_TOO_LONG = re.compile(
    r"prompt is too long|context (window|length)|exceeds? the context|too many (input )?tokens",
    re.IGNORECASE,
)


class AnthropicProvider(HttpProvider):
    """Completions from Anthropic's Messages API, with token and cost accounting.

    Besides the errors every provider raises, a call raises ``RefusalError`` when the model
    declined to answer and ``ContextTooLongError`` when the prompt does not fit its window.
    """

    name = "anthropic"
    path = "/v1/messages"

    def __init__(
        self,
        *,
        api_key: str | SecretStr | None,
        base_url: str = "https://api.anthropic.com",
        version: str = API_VERSION,
        timeout_s: float = 60.0,
        max_tokens: int = 4096,
        prices: PriceTable | None = None,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Build a provider (no connection is opened until the first call).

        Args:
            api_key: Sent as ``x-api-key``; never shown in errors.
            base_url: The API root (the requests go to ``{base_url}/v1/messages``).
            version: The ``anthropic-version`` header.
            timeout_s: Default timeout of a call, retries and their waits included.
            max_tokens: Reply limit of a call that gives none (the API requires one).
            prices: Prices per model (the built-in table by default).
            retry: When a failed call is retried (:class:`RetryPolicy` defaults: 2 retries).
            headers: Extra headers for every request (e.g. ``anthropic-beta``).
        """
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self.retry = retry or RetryPolicy()
        self._prices = prices or PriceTable()
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        self._headers = {
            "Accept": "application/json",
            "anthropic-version": version,
            **(headers or {}),
        }
        if key:
            self._headers["x-api-key"] = key

    @classmethod
    def from_settings(cls, llm: LLMSettings) -> Self:
        """Build the provider from ``llm.anthropic`` (URL, key, version ...) and ``llm.prices``."""
        anthropic: AnthropicSettings = llm.anthropic
        return cls(
            api_key=anthropic.api_key,
            base_url=anthropic.base_url,
            version=anthropic.version,
            timeout_s=anthropic.timeout_s,
            max_tokens=anthropic.max_tokens,
            prices=PriceTable(llm.prices),
            retry=RetryPolicy(max_retries=anthropic.max_retries),
        )

    # Internals ----------------------------------------------------------------------------

    def _body(
        self,
        chat: list[Message],
        model: str,
        max_tokens: int | None,
        temperature: float | None,
        tools: Sequence[Tool] | None,
    ) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in chat if m.role == "system")
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": max_tokens or self.max_tokens,
            "messages": _turns([m for m in chat if m.role != "system"]),
        }
        if system:
            body["system"] = system
        if temperature is not None:
            body["temperature"] = temperature
        if tools:
            body["tools"] = [
                {
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": dict(tool.input_schema),
                }
                for tool in tools
            ]
        return body

    def _completion(
        self, response: httpx.Response, chat: list[Message], model: str, started: float
    ) -> Completion:
        latency = time.perf_counter() - started
        if not response.is_success:
            raise _status_error(response, self.name, model)
        payload = json_object(response, self.name, model)
        if payload.get("type") == "error":  # an error sent with a 200 (seen behind proxies)
            raise _typed_error(payload, 500, None, self.name, model)
        text, tool_calls = _content(payload, self.name, model)
        reported = payload.get("model")
        answered_by = reported if isinstance(reported, str) and reported else model
        stop_reason = payload.get("stop_reason")
        if stop_reason == "refusal":
            raise RefusalError(
                f"{answered_by} declined to answer (stop_reason: refusal)",
                provider=self.name,
                model=answered_by,
                text=text,
            )
        usage = payload.get("usage")
        if not isinstance(usage, dict):
            raise MalformedResponseError(
                "the response has no usage", provider=self.name, model=model
            )
        uncached = _tokens(usage, "input_tokens", self.name, model)
        cache_write = _tokens(usage, "cache_creation_input_tokens", self.name, model)
        cache_read = _tokens(usage, "cache_read_input_tokens", self.name, model)
        tokens_out = _tokens(usage, "output_tokens", self.name, model)
        return Completion(
            text=text,
            tokens_in=uncached + cache_write + cache_read,
            tokens_out=tokens_out,
            cost_usd=self._prices.cost(
                answered_by,
                uncached,
                tokens_out,
                cache_write_tokens=cache_write,
                cache_read_tokens=cache_read,
            ),
            model=answered_by,
            latency_s=latency,
            provider=self.name,
            finish_reason=_finish_reason(stop_reason),
            tool_calls=tool_calls,
        )


def _turns(chat: list[Message]) -> list[dict[str, Any]]:
    """Chat messages as Messages API turns: tool results are user turns, and consecutive
    messages of one role are merged into one turn of content blocks."""
    turns: list[dict[str, Any]] = []
    for message in chat:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if turns and turns[-1]["role"] == role:
            previous = turns[-1]["content"]
            if isinstance(previous, str):
                previous = [{"type": "text", "text": previous}]
            turns[-1]["content"] = previous + blocks
        elif len(blocks) == 1 and blocks[0]["type"] == "text":
            turns.append({"role": role, "content": message.content})
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _blocks(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        if message.tool_call_id is None:
            raise ValueError("a tool message needs the tool_call_id of the call it answers")
        return [
            {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content,
            }
        ]
    blocks: list[dict[str, Any]] = []
    if message.content or not message.tool_calls:
        blocks.append({"type": "text", "text": message.content})
    blocks.extend(
        {"type": "tool_use", "id": call.id, "name": call.name, "input": dict(call.arguments)}
        for call in message.tool_calls
    )
    return blocks


def _content(
    payload: Mapping[str, Any], provider: str, model: str
) -> tuple[str, tuple[ToolCall, ...]]:
    content = payload.get("content")
    if not isinstance(content, list):
        raise MalformedResponseError(
            "the response has no content list", provider=provider, model=model
        )
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use" and isinstance(block.get("input"), dict):
            calls.append(ToolCall(str(block.get("id")), str(block.get("name")), block["input"]))
        elif kind in ("text", "tool_use") or kind is None:
            raise MalformedResponseError(
                f"a content block is not a valid {kind or 'block'}", provider=provider, model=model
            )
        # Other blocks (thinking, redacted_thinking, server tool results) carry no reply text.
    return "".join(texts), tuple(calls)


def _tokens(usage: Mapping[str, Any], key: str, provider: str, model: str) -> int:
    value = usage.get(key)
    if value is None:
        return 0  # cache fields are absent when prompt caching is not used
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise MalformedResponseError(f"usage.{key} is not a count", provider=provider, model=model)


def _finish_reason(stop_reason: Any) -> str | None:
    if not isinstance(stop_reason, str):
        return None
    return _STOP_REASONS.get(stop_reason, stop_reason)


def _status_error(response: httpx.Response, provider: str, model: str) -> ProviderError:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        text = response.text[:MAX_ERROR_TEXT] or response.reason_phrase
        payload = {"error": {"type": "", "message": text}}
    return _typed_error(payload, response.status_code, response.headers, provider, model)


def _typed_error(
    payload: Mapping[str, Any],
    status: int,
    headers: httpx.Headers | None,
    provider: str,
    model: str,
) -> ProviderError:
    """An error body ``{"type": "error", "error": {"type", "message"}}`` as a typed error."""
    error = payload.get("error")
    error = error if isinstance(error, dict) else {}
    kind = str(error.get("type") or "")
    message = str(error.get("message") or "")[:MAX_ERROR_TEXT]
    detail = f"HTTP {status}: {kind + ': ' if kind else ''}{message}"
    retry_after = retry_after_s(headers) if headers is not None else None
    options: dict[str, Any] = {"provider": provider, "model": model, "status_code": status}
    if status == 429 or kind == "rate_limit_error":
        return RateLimitError(detail, retry_after=retry_after, **options)
    if status == 529 or kind == "overloaded_error":
        return OverloadedError(detail, retry_after=retry_after, **options)
    if status == 408 or kind == "timeout_error":
        return ProviderTimeoutError(detail, **options)
    if 400 <= status < 500 and (
        status == 413 or kind == "request_too_large" or _CONTEXT_TOO_LONG.search(message)
    ):
        return ContextTooLongError(detail, **options)
    if 400 <= status < 500:
        return ProviderRequestError(detail, **options)
    return ProviderUnavailableError(detail, retry_after=retry_after, **options)
