"""The OpenAI-compatible provider against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from email.utils import formatdate

import pytest
from pydantic import SecretStr

from omium.kernel.settings import LLMSettings
from omium.sdk.providers import (
    ContextTooLongError,
    MalformedResponseError,
    Message,
    OpenAICompatibleProvider,
    PriceTable,
    ProviderRequestError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    RetryPolicy,
    Tool,
    ToolCall,
    count_prompt_tokens,
    count_tokens,
)
from tests.sdk.providers.chat_server import ChatServer, Reply, completion_body

MESSAGES = [
    {"role": "system", "content": "You write reports."},
    {"role": "user", "content": "Summarise the sources"},
]
SECRET = "sk-test-secret"


def provider_factory(server: ChatServer, **options: object) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(base_url=server.base_url, api_key=SECRET, **options)  # type: ignore[arg-type]


def test_a_completion_with_server_usage_and_cost(chat_server: ChatServer) -> None:
    chat_server.push(
        Reply(
            body=completion_body(
                "A summary.",
                model="gpt-4o-mini-2024-07-18",
                prompt_tokens=1000,
                completion_tokens=500,
            )
        )
    )
    provider = provider_factory(chat_server)

    completion = provider.complete(MESSAGES, model="gpt-4o-mini", max_tokens=50, temperature=0.2)

    assert completion.text == "A summary."
    assert (completion.tokens_in, completion.tokens_out) == (1000, 500)
    assert completion.model == "gpt-4o-mini-2024-07-18"
    assert completion.cost_usd == pytest.approx(PriceTable().cost("gpt-4o-mini", 1000, 500))
    assert completion.provider == "openai" and completion.finish_reason == "stop"
    assert completion.latency_s > 0
    [request] = chat_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert request.body == {
        "model": "gpt-4o-mini",
        "messages": MESSAGES,
        "max_tokens": 50,
        "temperature": 0.2,
    }
    provider.close()


def test_missing_usage_is_estimated(chat_server: ChatServer) -> None:
    body = completion_body("Three words here", model="local")
    del body["usage"]
    chat_server.push(Reply(body=body))

    completion = provider_factory(chat_server).complete(MESSAGES, model="local")

    assert completion.tokens_in == count_prompt_tokens(m["content"] for m in MESSAGES)
    assert completion.tokens_out == count_tokens("Three words here")
    assert completion.cost_usd == 0.0  # no price for "local"


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [({"Retry-After": "7"}, 7.0), ({"retry-after-ms": "1500"}, 1.5), ({}, None)],
)
def test_http_429_is_a_retryable_rate_limit(
    chat_server: ChatServer, headers: dict[str, str], retry_after: float | None
) -> None:
    error_body = {"error": {"message": "Rate limit reached for requests", "type": "requests"}}
    chat_server.push(Reply(status=429, body=error_body, headers=headers))

    with pytest.raises(RateLimitError) as caught:
        provider_factory(chat_server).complete(MESSAGES, model="gpt-4o-mini")
    error = caught.value
    assert (error.retryable, error.retry_after, error.status_code) == (True, retry_after, 429)
    assert (error.provider, error.model, error.failure_kind) == (
        "openai",
        "gpt-4o-mini",
        "exception",
    )
    assert "HTTP 429: Rate limit reached for requests" in str(error)


def test_retry_after_as_an_http_date(chat_server: ChatServer) -> None:
    chat_server.push(
        Reply(
            status=429, body={}, headers={"Retry-After": formatdate(time.time() + 30, usegmt=True)}
        )
    )

    with pytest.raises(RateLimitError) as caught:
        provider_factory(chat_server).complete(MESSAGES, model="m")
    assert caught.value.retry_after is not None and 25 <= caught.value.retry_after <= 30


@pytest.mark.parametrize("status", [500, 502, 503])
def test_http_5xx_is_a_retryable_unavailable_error(chat_server: ChatServer, status: int) -> None:
    chat_server.push(Reply(status=status, body="upstream exploded", headers={"Retry-After": "2"}))

    with pytest.raises(ProviderUnavailableError) as caught:
        provider_factory(chat_server).complete(MESSAGES, model="m")
    error = caught.value
    assert (error.retryable, error.status_code, error.retry_after) == (True, status, 2.0)
    assert "upstream exploded" in str(error)


@pytest.mark.parametrize("status", [400, 401, 404])
def test_other_4xx_is_not_retryable_and_never_shows_the_key(
    chat_server: ChatServer, status: int
) -> None:
    chat_server.push(
        Reply(status=status, body={"error": {"message": "Incorrect API key provided"}})
    )

    with pytest.raises(ProviderRequestError) as caught:
        provider_factory(chat_server).complete(MESSAGES, model="m")
    assert (caught.value.retryable, caught.value.status_code) == (False, status)
    assert SECRET not in str(caught.value)


def test_a_slow_server_times_out(chat_server: ChatServer) -> None:
    chat_server.push(Reply(body=completion_body("late", model="m"), delay_s=1.0))
    provider = provider_factory(chat_server, timeout_s=30)

    # The reply comes after 1 s, within the provider's 30 s: only the call's own 0.2 s times out.
    with pytest.raises(ProviderTimeoutError) as caught:
        provider.complete(MESSAGES, model="m", timeout_s=0.2)
    assert caught.value.retryable and caught.value.failure_kind == "timeout"


def test_http_408_is_a_timeout(chat_server: ChatServer) -> None:
    chat_server.push(Reply(status=408, body={}))

    with pytest.raises(ProviderTimeoutError):
        provider_factory(chat_server).complete(MESSAGES, model="m")


def test_an_unreachable_server_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again at once: nothing listens there
    provider = OpenAICompatibleProvider(base_url=f"http://127.0.0.1:{port}/v1", timeout_s=2)

    with pytest.raises(ProviderUnavailableError) as caught:
        provider.complete(MESSAGES, model="m")
    assert caught.value.retryable and caught.value.status_code is None


@pytest.mark.parametrize(
    "body",
    ["<html>gateway</html>", [1, 2], {"choices": []}, {"choices": [{"message": {"content": 5}}]}],
)
def test_malformed_responses_are_typed(chat_server: ChatServer, body: object) -> None:
    chat_server.push(Reply(body=body))

    with pytest.raises(MalformedResponseError) as caught:
        provider_factory(chat_server).complete(MESSAGES, model="m")
    assert caught.value.retryable


def test_async_calls_and_errors(chat_server: ChatServer) -> None:
    chat_server.push(Reply(status=429, body={}, headers={"Retry-After": "1"}))
    provider = provider_factory(chat_server)

    async def run() -> list[str]:
        with pytest.raises(RateLimitError):
            await provider.acomplete(MESSAGES, model="m")
        answers = await asyncio.gather(
            *(
                provider.acomplete([{"role": "user", "content": f"q{i}"}], model="m")
                for i in range(3)
            )
        )
        await provider.aclose()
        return sorted(a.text for a in answers)

    assert asyncio.run(run()) == ["echo: q0", "echo: q1", "echo: q2"]
    assert asyncio.run(provider.acomplete(MESSAGES, model="m")).text.startswith("echo:")  # new loop


def test_built_from_settings(chat_server: ChatServer) -> None:
    settings = LLMSettings(
        base_url=chat_server.base_url + "/",
        api_key=SecretStr(SECRET),
        prices={"house-model": (1.0, 2.0)},
    )
    chat_server.push(
        Reply(
            body=completion_body(
                "ok", model="house-model", prompt_tokens=1_000_000, completion_tokens=1_000_000
            )
        )
    )

    completion = OpenAICompatibleProvider.from_settings(settings).complete(
        MESSAGES, model="house-model"
    )

    assert completion.cost_usd == pytest.approx(3.0)
    assert chat_server.requests[0].headers["Authorization"] == f"Bearer {SECRET}"


def test_context_length_exceeded_is_typed(chat_server: ChatServer) -> None:
    chat_server.push(
        Reply(
            status=400,
            body={
                "error": {
                    "message": "This model's maximum context length is 128000 tokens.",
                    "code": "context_length_exceeded",
                }
            },
        )
    )

    with pytest.raises(ContextTooLongError) as caught:
        provider_factory(chat_server).complete(MESSAGES, model="m")
    assert not caught.value.retryable and caught.value.status_code == 400


def test_tool_calls_round_trip(chat_server: ChatServer) -> None:
    body = completion_body("", model="m")
    body["choices"][0]["message"]["tool_calls"] = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "search", "arguments": '{"q": "x"}'},
        }
    ]
    body["choices"][0]["finish_reason"] = "tool_calls"
    chat_server.push(Reply(body=body))
    provider = provider_factory(chat_server)
    search = Tool("search", "Search", {"type": "object", "properties": {"q": {"type": "string"}}})

    first = provider.complete(MESSAGES, model="m", tools=[search])
    provider.complete(
        [
            *MESSAGES,
            Message("assistant", "", tool_calls=first.tool_calls),
            Message("tool", "found", tool_call_id="call_1"),
        ],
        model="m",
    )

    assert first.tool_calls == (ToolCall("call_1", "search", {"q": "x"}),)
    assert chat_server.requests[0].body["tools"][0]["function"]["name"] == "search"
    assert chat_server.requests[1].body["messages"][2:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "search", "arguments": '{"q": "x"}'},
                }
            ],
        },
        {"role": "tool", "content": "found", "tool_call_id": "call_1"},
    ]


def test_retries_when_asked(chat_server: ChatServer) -> None:
    chat_server.push(Reply(status=503, body={}), Reply(body=completion_body("ok", model="m")))
    provider = provider_factory(chat_server, retry=RetryPolicy(initial_backoff_s=0.01))

    assert provider.complete(MESSAGES, model="m").text == "ok"
    assert len(chat_server.requests) == 2


@pytest.mark.parametrize(
    ("error", "retry", "time_left", "expected"),
    [
        (RateLimitError("x", provider="p", retry_after=2.0), 1, 10.0, 2.0),
        (RateLimitError("x", provider="p", retry_after=2.0), 3, 10.0, None),  # retries spent
        (RateLimitError("x", provider="p", retry_after=2.0), 1, 1.0, None),  # no time left
        (RateLimitError("x", provider="p", retry_after=90.0), 1, 100.0, None),  # hint too long
        (ProviderRequestError("x", provider="p"), 1, 10.0, None),  # not retryable
    ],
)
def test_the_retry_policy(
    error: ProviderRequestError, retry: int, time_left: float, expected: float | None
) -> None:
    assert RetryPolicy().wait_before(retry, error, time_left_s=time_left) == expected


def test_the_retry_policy_backs_off_exponentially_with_jitter() -> None:
    policy = RetryPolicy(max_retries=5, initial_backoff_s=1.0, max_backoff_s=4.0)
    error = ProviderUnavailableError("x", provider="p")

    waits = [policy.wait_before(n, error, time_left_s=100.0) for n in range(1, 5)]

    for wait, ceiling in zip(waits, [1.0, 2.0, 4.0, 4.0], strict=True):
        assert wait is not None and ceiling / 2 <= wait <= ceiling
