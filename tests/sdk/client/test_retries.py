"""Retries, idempotency keys and error bodies, against a scripted HTTP server on loopback.

The gateway cannot be made to answer 503 or a non-JSON error on demand, so these tests use a
small real server that replays a script of answers and records what it received.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from omium.sdk.client import (
    Client,
    ClientConfig,
    OmiumAPIError,
    OmiumConnectionError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
)

Answer = tuple[int, dict[str, str], bytes]
OK: Answer = (
    200,
    {"Content-Type": "application/json"},
    b'{"subject": "a", "tenant_id": "t", "roles": ["viewer"], "role": "viewer", '
    b'"method": "jwt", "key_id": null}',
)
ACCEPTED: Answer = (
    200,
    {"Content-Type": "application/json"},
    b'{"execution_id": "e1", "version": 2, "events": ["StepScheduled"]}',
)


def problem(status: int, slug: str, **headers: str) -> Answer:
    body = {
        "type": f"urn:omium:problem:{slug}",
        "title": slug,
        "status": status,
        "detail": f"{slug} happened",
        "scope": "tenant",
    }
    return (
        status,
        {"Content-Type": "application/problem+json", **headers},
        json.dumps(body).encode(),
    )


class ScriptedServer:
    """Answers requests from a script, in order; records method, path and headers."""

    def __init__(self) -> None:
        self.script: list[Answer] = []
        self.seen: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                server.seen.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers)}
                )
                status, headers, body = server.script.pop(0)
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    """A scripted server for one test."""
    scripted = ScriptedServer()
    yield scripted
    scripted.close()


@pytest.fixture
def sleeps() -> list[float]:
    """The delays the client slept, in order (nothing really sleeps)."""
    return []


def client_of(server: ScriptedServer, sleeps: list[float], **config: Any) -> Client:
    return Client(
        config=ClientConfig(base_url=server.url, token=SecretStr("t"), **config),
        sleep=sleeps.append,
    )


def test_429_waits_retry_after_and_resends_the_same_idempotency_key(
    server: ScriptedServer, sleeps: list[float]
) -> None:
    server.script = [
        problem(429, "rate-limited", **{"Retry-After": "2"}),
        problem(503, "store-unavailable"),
        ACCEPTED,
    ]
    with client_of(server, sleeps) as omium:
        accepted = omium.schedule_step("e1", "plan")

    assert accepted.version == 2 and sleeps == [2.0, 0.4]
    keys = [seen["headers"]["Idempotency-Key"] for seen in server.seen]
    assert len(keys) == 3 and len(set(keys)) == 1


def test_every_command_gets_its_own_key_and_queries_none(
    server: ScriptedServer, sleeps: list[float]
) -> None:
    server.script = [ACCEPTED, ACCEPTED, OK]
    with client_of(server, sleeps) as omium:
        omium.start_step("e1", "plan")
        omium.start_step("e1", "plan")
        omium.whoami()
    first, second, query = (seen["headers"] for seen in server.seen)
    assert first["Idempotency-Key"] != second["Idempotency-Key"]
    assert "Idempotency-Key" not in query and query["Authorization"] == "Bearer t"


def test_retries_give_up_with_the_typed_error(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script = [problem(429, "rate-limited", **{"Retry-After": "1"})] * 3
    with (
        client_of(server, sleeps, max_attempts=3) as omium,
        pytest.raises(RateLimitedError) as limited,
    ):
        omium.whoami()
    assert limited.value.retry_after == 1.0 and limited.value.extensions["scope"] == "tenant"
    assert sleeps == [1.0, 1.0] and len(server.seen) == 3


def test_a_retry_after_beyond_the_limit_is_not_waited_for(
    server: ScriptedServer, sleeps: list[float]
) -> None:
    server.script = [problem(503, "rate-limiter-unavailable", **{"Retry-After": "600"})]
    with client_of(server, sleeps) as omium, pytest.raises(ServiceUnavailableError) as down:
        omium.whoami()
    assert down.value.retry_after == 600.0 and sleeps == []


def test_other_errors_are_not_retried(server: ScriptedServer, sleeps: list[float]) -> None:
    server.script = [
        problem(500, "internal-error", **{"X-Request-ID": "req-1"}),
        (502, {"Content-Type": "text/html"}, b"<html>bad gateway</html>"),
    ]
    with client_of(server, sleeps) as omium:
        with pytest.raises(ServerError) as failed:
            omium.whoami()
        assert failed.value.request_id == "req-1" and failed.value.slug == "internal-error"
        with pytest.raises(OmiumAPIError) as proxied:
            omium.whoami()
    assert proxied.value.status == 502 and "bad gateway" in proxied.value.detail
    assert sleeps == []


def test_an_unreachable_gateway_raises_after_the_retries(sleeps: list[float]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = ClientConfig(base_url=f"http://127.0.0.1:{port}", max_attempts=3, backoff_s=0.1)
    with (
        Client(config=config, sleep=sleeps.append) as omium,
        pytest.raises(OmiumConnectionError) as unreachable,
    ):
        omium.whoami()
    assert unreachable.value.method == "GET" and sleeps == [0.1, 0.2]
