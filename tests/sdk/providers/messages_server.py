"""Anthropic Messages API shapes for the loopback test server (:class:`ChatServer`).

``messages_server()`` answers ``POST /v1/messages`` like the API: queued :class:`Reply` objects
first (built with :func:`message_body` and :func:`error_body`), else a message echoing the last
user text.
"""

from __future__ import annotations

from typing import Any

from tests.sdk.providers.chat_server import ChatServer, Reply


def message_body(
    text: str = "",
    *,
    model: str,
    input_tokens: int = 11,
    output_tokens: int = 7,
    stop_reason: str = "end_turn",
    tool_uses: list[dict[str, Any]] | None = None,
    cache_creation: int | None = None,
    cache_read: int | None = None,
) -> dict[str, Any]:
    """A Messages API response body as Anthropic sends it."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content.extend({"type": "tool_use", **use} for use in tool_uses or [])
    usage: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    if cache_creation is not None:
        usage["cache_creation_input_tokens"] = cache_creation
    if cache_read is not None:
        usage["cache_read_input_tokens"] = cache_read
    return {
        "id": "msg_01TestTestTest",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def error_body(kind: str, message: str) -> dict[str, Any]:
    """An error body: ``{"type": "error", "error": {"type": ..., "message": ...}}``."""
    return {"type": "error", "error": {"type": kind, "message": message}}


def rate_limited(retry_after: str | None = "1") -> Reply:
    """HTTP 429 ``rate_limit_error``, with ``retry-after`` when given."""
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    body = error_body("rate_limit_error", "Number of request tokens has exceeded your limit")
    return Reply(status=429, body=body, headers=headers)


def overloaded() -> Reply:
    """HTTP 529 ``overloaded_error``."""
    return Reply(status=529, body=error_body("overloaded_error", "Overloaded"))


def context_too_long() -> Reply:
    """HTTP 400 ``invalid_request_error`` for a prompt over the context window."""
    message = "prompt is too long: 215402 tokens > 200000 maximum"
    return Reply(status=400, body=error_body("invalid_request_error", message))


def _echo(body: Any) -> Reply:
    messages = body.get("messages", []) if isinstance(body, dict) else []
    last = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    model = body.get("model", "unknown") if isinstance(body, dict) else "unknown"
    return Reply(body=message_body(f"echo: {last}", model=model))


def messages_server() -> ChatServer:
    """A server speaking the Messages API; its ``base_url`` has no ``/v1``."""
    return ChatServer(echo=_echo, root="")
