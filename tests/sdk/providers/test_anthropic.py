"""The Anthropic provider against a real HTTP server on loopback speaking the Messages API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import pytest
from pydantic import SecretStr

from omium.kernel.settings import AnthropicSettings, LLMSettings
from omium.sdk.providers import (
    AnthropicProvider,
    ContextTooLongError,
    MalformedResponseError,
    Message,
    OverloadedError,
    PriceTable,
    ProviderRequestError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    RefusalError,
    RetryPolicy,
    Tool,
    ToolCall,
    providers_from_settings,
)
from tests.sdk.providers.chat_server import ChatServer, Reply
from tests.sdk.providers.messages_server import (
    context_too_long,
    error_body,
    message_body,
    overloaded,
    rate_limited,
)

MESSAGES = [
    {"role": "system", "content": "You write reports."},
    {"role": "user", "content": "Summarise the sources"},
]
SECRET = "sk-ant-test-secret"
FAST = RetryPolicy(max_retries=2, initial_backoff_s=0.01, max_backoff_s=0.05)


def provider_factory(server: ChatServer, **options: object) -> AnthropicProvider:
    options.setdefault("retry", FAST)
    return AnthropicProvider(base_url=server.base_url, api_key=SECRET, **options)  # type: ignore[arg-type]


def test_a_completion_with_usage_cost_and_the_request_as_the_api_wants_it(
    messages_api: ChatServer,
) -> None:
    messages_api.push(
        Reply(
            body=message_body(
                "A summary.",
                model="claude-sonnet-4-5-20250929",
                input_tokens=1000,
                output_tokens=500,
            )
        )
    )
    provider = provider_factory(messages_api)

    completion = provider.complete(
        MESSAGES, model="claude-sonnet-4-5", max_tokens=50, temperature=0.2
    )

    assert completion.text == "A summary."
    assert (completion.tokens_in, completion.tokens_out) == (1000, 500)
    assert completion.model == "claude-sonnet-4-5-20250929"
    assert completion.cost_usd == pytest.approx(1000 * 3 / 1e6 + 500 * 15 / 1e6)
    assert completion.provider == "anthropic" and completion.finish_reason == "stop"
    assert completion.tool_calls == () and completion.latency_s > 0
    [request] = messages_api.requests
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == SECRET
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 50,
        "system": "You write reports.",
        "messages": [{"role": "user", "content": "Summarise the sources"}],
        "temperature": 0.2,
    }
    provider.close()


def test_max_tokens_defaults_because_the_api_requires_it(messages_api: ChatServer) -> None:
    provider_factory(messages_api, max_tokens=321).complete(
        [{"role": "user", "content": "hi"}], model="claude-haiku-4-5"
    )

    assert messages_api.requests[0].body["max_tokens"] == 321
    assert "system" not in messages_api.requests[0].body


def test_prompt_cache_tokens_count_as_input_and_are_priced_apart(messages_api: ChatServer) -> None:
    messages_api.push(
        Reply(
            body=message_body(
                "ok",
                model="claude-sonnet-4-20250514",
                input_tokens=100,
                output_tokens=10,
                cache_creation=2000,
                cache_read=30_000,
            )
        )
    )

    completion = provider_factory(messages_api).complete(MESSAGES, model="claude-sonnet-4")

    assert completion.tokens_in == 32_100
    expected = (100 * 3 + 10 * 15 + 2000 * 3 * 1.25 + 30_000 * 3 * 0.1) / 1e6
    assert completion.cost_usd == pytest.approx(expected)


def test_prices_can_be_overridden(messages_api: ChatServer) -> None:
    messages_api.push(
        Reply(body=message_body("ok", model="claude-house", input_tokens=10**6, output_tokens=0))
    )
    provider = provider_factory(messages_api, prices=PriceTable({"claude-house": (2.0, 4.0)}))

    assert provider.complete(MESSAGES, model="claude-house").cost_usd == pytest.approx(2.0)


def test_tool_use_round_trip(messages_api: ChatServer) -> None:
    search = Tool(
        "search",
        "Search the sources",
        {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    )
    messages_api.push(
        Reply(
            body=message_body(
                "Let me look.",
                model="claude-sonnet-4-5",
                stop_reason="tool_use",
                tool_uses=[{"id": "toolu_01", "name": "search", "input": {"q": "revenue"}}],
            )
        ),
        Reply(body=message_body("Revenue grew 4%.", model="claude-sonnet-4-5")),
    )
    provider = provider_factory(messages_api)

    first = provider.complete(MESSAGES, model="claude-sonnet-4-5", tools=[search])
    assert first.finish_reason == "tool_calls"
    assert first.tool_calls == (ToolCall("toolu_01", "search", {"q": "revenue"}),)
    conversation: list[Message | Mapping[str, str]] = [
        *MESSAGES,
        Message("assistant", first.text, tool_calls=first.tool_calls),
        Message("tool", "revenue: +4%", tool_call_id="toolu_01"),
    ]
    second = provider.complete(conversation, model="claude-sonnet-4-5", tools=[search])

    assert second.text == "Revenue grew 4%." and second.tool_calls == ()
    first_body, second_body = (r.body for r in messages_api.requests)
    assert first_body["tools"] == [
        {
            "name": "search",
            "description": "Search the sources",
            "input_schema": search.input_schema,
        }
    ]
    assert second_body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_01", "name": "search", "input": {"q": "revenue"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "revenue: +4%"}
            ],
        },
    ]


def test_a_reply_cut_at_max_tokens_says_length(messages_api: ChatServer) -> None:
    messages_api.push(Reply(body=message_body("A long", model="m", stop_reason="max_tokens")))

    completion = provider_factory(messages_api).complete(MESSAGES, model="m", max_tokens=2)

    assert completion.finish_reason == "length"


def test_429_is_retried_after_the_servers_retry_after(messages_api: ChatServer) -> None:
    messages_api.push(rate_limited("0.3"), Reply(body=message_body("ok", model="m")))

    started = time.perf_counter()
    completion = provider_factory(messages_api).complete(MESSAGES, model="m")

    assert completion.text == "ok"
    assert time.perf_counter() - started >= 0.3
    assert len(messages_api.requests) == 2


def test_429_after_the_last_retry_is_a_rate_limit_with_its_hint(messages_api: ChatServer) -> None:
    messages_api.push(rate_limited("0.01"), rate_limited("0.01"), rate_limited("7"))

    with pytest.raises(RateLimitError) as caught:
        provider_factory(messages_api).complete(MESSAGES, model="claude-haiku-4-5")

    error = caught.value
    assert (error.retryable, error.retry_after, error.status_code) == (True, 7.0, 429)
    assert (error.provider, error.model, error.failure_kind) == (
        "anthropic",
        "claude-haiku-4-5",
        "exception",
    )
    assert "rate_limit_error" in str(error) and SECRET not in str(error)
    assert len(messages_api.requests) == 3


def test_a_retry_after_longer_than_the_timeout_is_not_waited(messages_api: ChatServer) -> None:
    messages_api.push(rate_limited("3600"))

    started = time.perf_counter()
    with pytest.raises(RateLimitError) as caught:
        provider_factory(messages_api).complete(MESSAGES, model="m", timeout_s=5)

    # Given up at once: waiting the hour would break the call's own 5 s timeout.
    assert time.perf_counter() - started < 5 and caught.value.retry_after == 3600.0
    assert len(messages_api.requests) == 1


def test_529_overloaded_is_retried_then_typed(messages_api: ChatServer) -> None:
    messages_api.push(overloaded(), Reply(body=message_body("ok", model="m")))
    assert provider_factory(messages_api).complete(MESSAGES, model="m").text == "ok"

    messages_api.push(overloaded(), overloaded(), overloaded())
    with pytest.raises(OverloadedError) as caught:
        provider_factory(messages_api).complete(MESSAGES, model="m")

    assert isinstance(caught.value, ProviderUnavailableError)
    assert (caught.value.retryable, caught.value.status_code) == (True, 529)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retried(messages_api: ChatServer, status: int) -> None:
    messages_api.push(
        Reply(status=status, body=error_body("api_error", "Internal server error")),
        Reply(status=status, body="<html>bad gateway</html>"),
        Reply(body=message_body("ok", model="m")),
    )

    assert provider_factory(messages_api).complete(MESSAGES, model="m").text == "ok"
    assert len(messages_api.requests) == 3


def test_no_retries_when_the_policy_says_so(messages_api: ChatServer) -> None:
    messages_api.push(Reply(status=500, body=error_body("api_error", "boom")))

    with pytest.raises(ProviderUnavailableError) as caught:
        provider_factory(messages_api, retry=RetryPolicy(max_retries=0)).complete(
            MESSAGES, model="m"
        )

    assert "api_error: boom" in str(caught.value) and len(messages_api.requests) == 1


def test_a_prompt_over_the_context_window_is_not_retried(messages_api: ChatServer) -> None:
    messages_api.push(context_too_long())

    with pytest.raises(ContextTooLongError) as caught:
        provider_factory(messages_api).complete(MESSAGES, model="m")

    assert isinstance(caught.value, ProviderRequestError)
    assert (caught.value.retryable, caught.value.status_code) == (False, 400)
    assert "prompt is too long" in str(caught.value)
    assert len(messages_api.requests) == 1


def test_413_request_too_large_is_context_too_long(messages_api: ChatServer) -> None:
    messages_api.push(
        Reply(status=413, body=error_body("request_too_large", "Request exceeds the maximum size"))
    )

    with pytest.raises(ContextTooLongError):
        provider_factory(messages_api).complete(MESSAGES, model="m")


def test_a_refusal_is_a_refusal_error(messages_api: ChatServer) -> None:
    messages_api.push(
        Reply(body=message_body("I can't help with that.", model="m", stop_reason="refusal"))
    )

    with pytest.raises(RefusalError) as caught:
        provider_factory(messages_api).complete(MESSAGES, model="m")

    assert not caught.value.retryable and caught.value.text == "I can't help with that."
    assert len(messages_api.requests) == 1


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
    ],
)
def test_other_4xx_are_not_retried_and_never_show_the_key(
    messages_api: ChatServer, status: int, kind: str
) -> None:
    messages_api.push(Reply(status=status, body=error_body(kind, "invalid x-api-key")))

    with pytest.raises(ProviderRequestError) as caught:
        provider_factory(messages_api).complete(MESSAGES, model="m")

    assert not isinstance(caught.value, ContextTooLongError)
    assert (caught.value.retryable, caught.value.status_code) == (False, status)
    assert kind in str(caught.value) and SECRET not in str(caught.value)
    assert len(messages_api.requests) == 1


def test_a_slow_server_times_out_within_the_calls_timeout(messages_api: ChatServer) -> None:
    messages_api.push(Reply(body=message_body("late", model="m"), delay_s=1.0))

    # The reply comes after 1 s, well within the provider's default timeout: only the call's
    # own 0.3 s can make it time out.
    with pytest.raises(ProviderTimeoutError) as caught:
        provider_factory(messages_api).complete(MESSAGES, model="m", timeout_s=0.3)

    assert caught.value.retryable and caught.value.failure_kind == "timeout"


@pytest.mark.parametrize(
    "body",
    [
        "<html>gateway</html>",
        [1, 2],
        {"content": "text", "usage": {"input_tokens": 1, "output_tokens": 1}},
        {"content": [{"type": "text"}], "usage": {"input_tokens": 1, "output_tokens": 1}},
        {"content": [{"type": "text", "text": "x"}]},
        {"content": [{"type": "text", "text": "x"}], "usage": {"input_tokens": "many"}},
    ],
)
def test_malformed_responses_are_typed_and_retried(messages_api: ChatServer, body: object) -> None:
    messages_api.push(Reply(body=body), Reply(body=body), Reply(body=body))

    with pytest.raises(MalformedResponseError) as caught:
        provider_factory(messages_api).complete(MESSAGES, model="m")

    assert caught.value.retryable and len(messages_api.requests) == 3


def test_thinking_blocks_are_not_reply_text(messages_api: ChatServer) -> None:
    body = message_body("The answer.", model="m")
    body["content"].insert(0, {"type": "thinking", "thinking": "hmm", "signature": "sig"})
    messages_api.push(Reply(body=body))

    assert provider_factory(messages_api).complete(MESSAGES, model="m").text == "The answer."


def test_async_calls_retries_and_errors(messages_api: ChatServer) -> None:
    provider = provider_factory(messages_api)

    async def run() -> list[str]:
        messages_api.push(context_too_long())
        with pytest.raises(ContextTooLongError):
            await provider.acomplete(MESSAGES, model="m")
        messages_api.push(rate_limited("0.05"))
        answers = await asyncio.gather(
            *(
                provider.acomplete([{"role": "user", "content": f"q{i}"}], model="m")
                for i in range(3)
            )
        )
        await provider.aclose()
        return sorted(a.text for a in answers)

    assert asyncio.run(run()) == ["echo: q0", "echo: q1", "echo: q2"]
    assert len(messages_api.requests) == 5  # the 400, one 429 retried, three answers


def test_built_from_settings_and_by_the_factory(messages_api: ChatServer) -> None:
    llm = LLMSettings(
        prices={"claude-house": (1.0, 2.0)},
        anthropic=AnthropicSettings(
            base_url=messages_api.base_url + "/",
            api_key=SecretStr(SECRET),
            version="2099-01-01",
            max_tokens=99,
            max_retries=0,
        ),
    )
    messages_api.push(
        Reply(
            body=message_body(
                "ok", model="claude-house", input_tokens=1_000_000, output_tokens=1_000_000
            )
        )
    )

    provider = providers_from_settings(llm)["anthropic"]
    completion = provider.complete(MESSAGES, model="claude-house")

    assert isinstance(provider, AnthropicProvider) and provider.retry.max_retries == 0
    assert completion.cost_usd == pytest.approx(3.0)
    [request] = messages_api.requests
    assert request.headers["anthropic-version"] == "2099-01-01"
    assert request.headers["x-api-key"] == SECRET and request.body["max_tokens"] == 99


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from omium.kernel.settings import load_settings

    monkeypatch.setenv("OMIUM_LLM__ANTHROPIC__API_KEY", SECRET)
    monkeypatch.setenv("OMIUM_LLM__ANTHROPIC__BASE_URL", "http://127.0.0.1:1")
    settings = load_settings()

    assert settings.llm.anthropic.api_key is not None
    assert settings.llm.anthropic.api_key.get_secret_value() == SECRET
    assert settings.llm.anthropic.base_url == "http://127.0.0.1:1"
    assert SECRET not in str(settings.masked_dump())
