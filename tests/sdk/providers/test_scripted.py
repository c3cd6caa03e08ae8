"""The scripted provider: rule matching, token/cost accounting and fault injection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from omium.sdk.providers import (
    Fault,
    InjectedFaultError,
    Message,
    NoScriptedResponseError,
    PriceTable,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    Script,
    ScriptedProvider,
    ScriptRule,
    calls_for_execution,
    count_prompt_tokens,
    count_tokens,
)

USER = [{"role": "user", "content": "Write about trams"}]


def provider_factory(*rules: ScriptRule, default: str | None = None) -> ScriptedProvider:
    return ScriptedProvider(Script(rules=list(rules), default=default))


def test_first_matching_rule_answers_with_tokens_and_cost() -> None:
    provider = provider_factory(
        ScriptRule(agent="writer", prompt="trams?", response="Trams are quiet."),
        ScriptRule(agent="writer", response="Generic."),
        default="fallback",
    )

    completion = provider.complete(USER, model="gpt-4o-mini", agent="writer", step_id="draft")

    assert completion.text == "Trams are quiet."
    assert completion.tokens_in == count_prompt_tokens(["Write about trams"])
    assert completion.tokens_out == count_tokens("Trams are quiet.")
    expected_cost = PriceTable().cost("gpt-4o-mini", completion.tokens_in, completion.tokens_out)
    assert completion.cost_usd == expected_cost > 0
    assert (completion.provider, completion.model, completion.finish_reason) == (
        "scripted",
        "gpt-4o-mini",
        "stop",
    )
    other = [Message("user", "Something else")]
    assert provider.complete(other, model="m", agent="writer").text == "Generic."
    assert provider.complete(other, model="m", agent="reviewer").text == "fallback"
    assert [call.rule for call in provider.calls] == [0, 1, None]


def test_matching_on_step_and_model_and_response_lists() -> None:
    provider = provider_factory(
        ScriptRule(step="review", model="gpt-4o", response=["publish", "revise"]),
        default="other",
    )

    answers = [provider.complete(USER, model="gpt-4o", step_id="review").text for _ in range(3)]

    assert answers == ["publish", "revise", "revise"]
    assert provider.complete(USER, model="gpt-4o-mini", step_id="review").text == "other"


def test_no_rule_and_no_default_is_a_typed_error() -> None:
    provider = provider_factory(ScriptRule(agent="writer", response="x"))

    with pytest.raises(NoScriptedResponseError) as caught:
        provider.complete(USER, model="m", agent="reader")
    assert caught.value.retryable is False


def test_max_tokens_cuts_the_reply() -> None:
    provider = provider_factory(default="one two three four five six")

    completion = provider.complete(USER, model="m", max_tokens=3)

    assert completion.text == "one two three"
    assert (completion.tokens_out, completion.finish_reason) == (3, "length")


def test_a_fault_on_the_first_call_only_lets_the_retry_succeed() -> None:
    provider = provider_factory(
        ScriptRule(agent="writer", response="fine", faults=[Fault(kind="exception", on_calls=[1])])
    )

    with pytest.raises(InjectedFaultError) as caught:
        provider.complete(USER, model="m", agent="writer")
    assert caught.value.retryable is True
    assert provider.complete(USER, model="m", agent="writer").text == "fine"
    assert [(c.rule_call, c.fault) for c in provider.calls] == [(1, "exception"), (2, None)]
    assert provider.calls[0].error is caught.value


@pytest.mark.parametrize(
    ("fault", "error_type", "failure_kind"),
    [
        (Fault(kind="timeout"), ProviderTimeoutError, "timeout"),
        (Fault(kind="rate_limit", retry_after_s=2.5), RateLimitError, "exception"),
        (Fault(kind="exception", retryable=False, message="boom"), InjectedFaultError, "exception"),
    ],
)
def test_raising_faults_are_typed(
    fault: Fault, error_type: type[ProviderError], failure_kind: str
) -> None:
    provider = provider_factory(ScriptRule(response="fine", faults=[fault]))

    with pytest.raises(error_type) as caught:
        provider.complete(USER, model="m")
    assert caught.value.failure_kind == failure_kind
    assert caught.value.retryable is fault.retryable
    if fault.kind == "rate_limit":
        assert caught.value.retry_after == 2.5


def test_malformed_output_is_a_cut_reply() -> None:
    reply = '{"facts": [{"text": "Trams are quiet", "source": "s1"}]}'
    provider = provider_factory(ScriptRule(response=reply, faults=[Fault(kind="malformed")]))

    completion = provider.complete(USER, model="m")

    assert completion.text == reply[: len(reply) // 2]


def test_hallucinated_output_adds_an_unsupported_cited_claim() -> None:
    reply = "Oslo had no road deaths in 2019 [source:oslo]."
    provider = provider_factory(
        ScriptRule(response=reply, faults=[Fault(kind="hallucinated", on_calls=[2])])
    )

    first = provider.complete(USER, model="m").text
    second = provider.complete(USER, model="m").text

    assert first == reply
    assert second.startswith(reply) and "4,700%" in second and "[source:oslo]" in second[-30:]


def test_calls_made_for_a_run_are_numbered_per_run() -> None:
    """The demo's "first draft is hallucinated" happens once in every run a worker serves, not
    once per worker process; calls outside any run keep one numbering per provider."""
    reply = "Oslo had no road deaths in 2019 [source:oslo]."
    provider = provider_factory(
        ScriptRule(
            agent="writer", response=reply, faults=[Fault(kind="hallucinated", on_calls=[1])]
        )
    )

    def draft(run: str | None) -> str:
        with calls_for_execution(run):
            return provider.complete(USER, model="m", agent="writer").text

    answers = [draft("run-1"), draft("run-2"), draft("run-1"), draft(None), draft(None)]
    answers.append(draft("run-2"))

    hallucinated = [answer != reply for answer in answers]
    assert hallucinated == [True, True, False, True, False, False]
    assert [(c.execution_id, c.rule_call) for c in provider.calls] == [
        ("run-1", 1),
        ("run-2", 1),
        ("run-1", 2),
        (None, 1),
        (None, 2),
        ("run-2", 2),
    ]


def test_an_async_call_in_a_task_counts_for_the_run_it_was_made_for() -> None:
    provider = provider_factory(ScriptRule(response=["first", "later"]))

    async def ask(run: str) -> str:
        with calls_for_execution(run):
            return (await provider.acomplete(USER, model="m")).text

    async def three() -> list[str]:
        return list(await asyncio.gather(ask("a"), ask("b"), ask("a")))

    assert asyncio.run(three()) == ["first", "first", "later"]


def test_inject_fault_hits_the_next_matching_call_once() -> None:
    provider = provider_factory(default="ok")
    provider.inject_fault("rate_limit", agent="writer")

    assert provider.complete(USER, model="m", agent="researcher").text == "ok"
    with pytest.raises(RateLimitError):
        provider.complete(USER, model="m", agent="writer")
    assert provider.complete(USER, model="m", agent="writer").text == "ok"
    provider.reset()
    assert provider.calls == []


def test_latency_is_waited_and_a_shorter_timeout_times_out() -> None:
    provider = provider_factory(ScriptRule(response="slow", latency_s=0.05))

    assert provider.complete(USER, model="m").latency_s >= 0.05
    with pytest.raises(ProviderTimeoutError, match=r"no answer within 0\.01s"):
        provider.complete(USER, model="m", timeout_s=0.01)


def test_async_calls_share_the_script() -> None:
    provider = provider_factory(ScriptRule(response=["a", "b", "c"], latency_s=0.01))

    async def run() -> list[str]:
        completions = await asyncio.gather(*(provider.acomplete(USER, model="m") for _ in range(3)))
        return sorted(c.text for c in completions)

    assert asyncio.run(run()) == ["a", "b", "c"]
    assert sorted(call.number for call in provider.calls) == [1, 2, 3]


def test_scripts_load_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "script.yaml"
    path.write_text(
        "rules:\n"
        "  - agent: writer\n"
        "    response: hello\n"
        "    faults: [{kind: timeout, on_calls: [1]}]\n"
        "default: nothing\n",
        encoding="utf-8",
    )
    provider = ScriptedProvider.from_file(path)

    with pytest.raises(ProviderTimeoutError):
        provider.complete(USER, model="m", agent="writer")
    assert provider.complete(USER, model="m", agent="writer").text == "hello"


def test_bad_messages_are_refused() -> None:
    provider = provider_factory(default="x")

    with pytest.raises(ValueError, match="role"):
        provider.complete([{"role": "robot", "content": "hi"}], model="m")
    with pytest.raises(ValueError, match="at least one"):
        provider.complete([], model="m")


def test_built_from_settings_with_a_script_and_prices(tmp_path: Path) -> None:
    from omium.kernel.settings import LLMSettings
    from omium.sdk.providers import OpenAICompatibleProvider, providers_from_settings

    path = tmp_path / "script.yaml"
    path.write_text("default: from the file\n", encoding="utf-8")
    llm = LLMSettings(script_path=path, prices={"house": (1.0, 1.0)})

    providers = providers_from_settings(llm)

    assert set(providers) == {"scripted", "openai", "anthropic"}
    assert isinstance(providers["openai"], OpenAICompatibleProvider)
    completion = providers["scripted"].complete(USER, model="house")
    assert completion.text == "from the file"
    assert completion.cost_usd == pytest.approx(
        (completion.tokens_in + completion.tokens_out) / 1e6
    )
    with pytest.raises(NoScriptedResponseError):
        ScriptedProvider.from_settings(LLMSettings()).complete(USER, model="m")
