"""A tiny OpenAI-compatible chat-completions server on loopback, for provider tests.

It speaks real HTTP (``POST /v1/chat/completions``); each request gets the next queued
:class:`Reply`, or, when none is queued, a well-formed completion echoing the last user message.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted HTTP answer: status, JSON (or raw text) body, headers and a delay."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Received:
    """A request the server got."""

    path: str
    headers: dict[str, str]
    body: Any


def completion_body(
    text: str, *, model: str, prompt_tokens: int = 11, completion_tokens: int = 7
) -> dict[str, Any]:
    """A chat-completions response body as OpenAI sends it."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class ChatServer:
    """The server; use as a context manager (it listens on a free port of 127.0.0.1)."""

    def __init__(self, *, echo: Callable[[Any], Reply] | None = None, root: str = "/v1") -> None:
        self.echo = echo or _echo
        self.root = root
        self.replies: deque[Reply] = deque()
        self.requests: list[Received] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # A short poll interval, so stopping the server does not wait half a second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        """The API root, ``http://127.0.0.1:<port>/v1`` (``root`` after the port)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.root}"

    def push(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order."""
        self.replies.extend(replies)

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(chat: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            body = json.loads(raw) if raw else None
            chat.requests.append(Received(self.path, dict(self.headers), body))
            reply = chat.replies.popleft() if chat.replies else chat.echo(body)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            self._send(reply)

        def _send(self, reply: Reply) -> None:
            data = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
            encoded = data.encode("utf-8")
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(encoded)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            # The client may have given up already (a timeout test).
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(encoded)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


def _echo(body: Any) -> Reply:
    messages = body.get("messages", []) if isinstance(body, dict) else []
    last = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    model = body.get("model", "unknown") if isinstance(body, dict) else "unknown"
    return Reply(body=completion_body(f"echo: {last}", model=model))
