"""Root-cause diagnosis without Kafka: the scripted provider's deterministic answer, quotes
checked against the context, learned statistics as similar failures, and bad answers."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from omium.sdk.providers import ScriptedProvider
from omium.streams.recovery import (
    DIAGNOSIS_AGENT,
    DiagnosisError,
    FailureContext,
    diagnose,
    failure_context,
    parse_diagnosis,
    suggestion_arguments,
)

DEFINITION: dict[str, Any] = {
    "name": "report",
    "agents": {
        "writer": {"entrypoint": "agents.writer:run"},
        "careful-writer": {"entrypoint": "agents.careful:run"},
    },
    "steps": [
        {"id": "research", "agent": "writer"},
        {"id": "draft", "agent": "writer", "needs": ["research"], "input": {"words": 300}},
    ],
}
ANSWER = {
    "probable_cause": "The writer cites a figure that is in no source.",
    "evidence": [
        {"source": "error", "quote": "claim not supported by any source"},
        {"source": "step_output", "quote": "grew by 4,700%"},
        {"source": "step_output", "quote": "a quote the model made up"},
    ],
    "fix": {"action": "fallback", "agent": "careful-writer", "reason": "it checks sources"},
    "confidence": 0.8,
}


def run_view() -> Any:
    step = SimpleNamespace
    return SimpleNamespace(
        id="0b7f4a52-5f35-4c6b-9d35-1b7e1f1b2a10",
        state="waiting_for_approval",
        input={"topic": "llamas"},
        steps=[
            step(step_id="research", status="completed", agent="writer", output={"facts": 3},
                 error=None),
            step(step_id="draft", status="scheduled", agent="writer",
                 output={"text": "Llama exports grew by 4,700% in 2024."},
                 error="hallucination: claim not supported by any source"),
        ],
        checkpoints=[SimpleNamespace(checkpoint_id="cp-1", step_id="draft", position="before")],
    )  # fmt: skip


def context() -> FailureContext:
    return failure_context(
        run_view(),
        DEFINITION,
        step_id="draft",
        failure={"failure_id": "f-1", "kind": "hallucination", "details": {"a": "b"}},
        statistics=[
            {"action_key": "rollback", "tries": 3, "successes": 0},
            {"action_key": "fallback:careful-writer", "tries": 2, "successes": 2},
        ],
    )


def test_a_scripted_model_gives_a_deterministic_checked_diagnosis() -> None:
    provider = ScriptedProvider(
        {"rules": [{"agent": DIAGNOSIS_AGENT, "response": json.dumps(ANSWER)}]}
    )

    result = diagnose(provider, context(), model="claude-sonnet-4-5")

    diagnosis = result.diagnosis
    assert diagnosis.fix.action == "fallback" and diagnosis.fix.agent == "careful-writer"
    assert diagnosis.fix.step_id == "draft"  # filled in from the failure
    assert [e.verified for e in diagnosis.evidence] == [True, True, False]
    assert [(s.fixed_by, s.success_rate) for s in diagnosis.similar_failures] == [
        (None, 0.0),
        ("fallback:careful-writer", 1.0),
    ]
    [call] = provider.calls
    assert call.agent == DIAGNOSIS_AGENT and call.step_id == "draft"
    assert result.completion.tokens_in > 0
    prompt = call.completion.text if call.completion else ""
    assert prompt  # the call was answered
    arguments = suggestion_arguments(result, context(), suggestion_id="s1", requested_by="me")
    assert arguments["fix"] == {
        "action": "fallback",
        "agent": "careful-writer",
        "reason": "it checks sources",
        "step_id": "draft",
    }
    assert arguments["failure_id"] == "f-1" and arguments["usage"]["provider"] == "scripted"
    assert "fix" not in arguments["diagnosis"]


def test_the_context_holds_what_the_model_needs() -> None:
    document = context().as_document()

    assert document["step_input"] == {"words": 300}
    assert document["step_output"] == {"text": "Llama exports grew by 4,700% in 2024."}
    assert document["upstream_outputs"] == {"research": {"facts": 3}}
    assert document["agents"] == ["careful-writer", "writer"]
    assert document["checkpoints"] == [
        {"checkpoint_id": "cp-1", "step_id": "draft", "position": "before"}
    ]
    assert document["error"] == "hallucination: claim not supported by any source"


def test_an_answer_wrapped_in_prose_and_fences_is_read() -> None:
    text = "Here is my analysis:\n```json\n" + json.dumps(ANSWER) + "\n```\nHope it helps."

    assert parse_diagnosis(text, context()).fix.action == "fallback"


@pytest.mark.parametrize(
    "text",
    [
        "I think the writer is wrong.",
        json.dumps({"probable_cause": "x"}),
        json.dumps({**ANSWER, "fix": {"action": "skip_policy"}}),
        json.dumps({**ANSWER, "confidence": 7}),
    ],
)
def test_answers_that_are_not_diagnoses_are_refused(text: str) -> None:
    with pytest.raises(DiagnosisError):
        parse_diagnosis(text, context())
