"""The execution worker's pieces that need no server: outputs, timeouts, checks, state, items."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from omium.sdk.workflow import load_workflow, parse_workflow_dict
from omium.worker import AgentOutputError, RunState, StepTimeoutError, WorkItem
from omium.worker._agents import call_agent, normalise_output
from omium.worker._checks import check_output, failure_of, recovery_details
from omium.worker._errors import BudgetExceededError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "workflows" / "research_report.yaml"


class FakeContext:
    step_id = "s"
    agent = "a"
    attempt = 1


def test_outputs_are_json_objects() -> None:
    assert normalise_output({"a": (1, 2)}) == {"a": [1, 2]}
    assert normalise_output("hello") == {"text": "hello"}
    assert normalise_output(None) == {}
    assert normalise_output(3) == {"value": 3}
    with pytest.raises(AgentOutputError):
        normalise_output({"when": object()})
    with pytest.raises(AgentOutputError):
        normalise_output({"x": float("nan")})


def test_an_agent_past_its_timeout_is_abandoned_and_cancelled() -> None:
    cancel, release, finished = threading.Event(), threading.Event(), threading.Event()

    def stuck(ctx: object) -> None:
        release.wait(30)
        finished.set()

    with pytest.raises(StepTimeoutError) as caught:
        call_agent(stuck, FakeContext(), timeout_s=0.2, cancel=cancel)  # type: ignore[arg-type]
    assert not finished.is_set()  # abandoned while the agent still runs, not waited for
    release.set()
    assert cancel.is_set()
    assert caught.value.failure_kind == "timeout" and caught.value.timeout_s == 0.2


def test_agent_errors_pass_through_and_async_agents_are_awaited() -> None:
    def broken(ctx: Any) -> None:
        raise KeyError("missing")

    async def later(ctx: Any) -> dict[str, int]:
        await asyncio.sleep(0.01)
        return {"n": 1}

    with pytest.raises(KeyError):
        call_agent(broken, FakeContext(), timeout_s=1, cancel=threading.Event())  # type: ignore[arg-type]
    assert call_agent(later, FakeContext(), timeout_s=1, cancel=threading.Event()) == {"n": 1}  # type: ignore[arg-type]


def test_a_hallucinated_draft_is_a_hallucination_and_a_good_one_passes() -> None:
    workflow = load_workflow(EXAMPLE)
    draft = workflow.step("draft")
    research = {"facts": [], "sources": {"oslo": "Oslo recorded zero deaths in 2019."}}
    good = {
        "report": "# Oslo\n\nOslo recorded zero deaths in 2019 [source:oslo]. "
        "Oslo recorded zero deaths in 2019 [source:oslo]. "
        "Oslo recorded zero deaths in 2019 [source:oslo]."
    }
    assert check_output(draft, good, {"research": research}, tokens_out=None, attempt=1) is None
    bad = {"report": good["report"] + " Deaths fell by 4,700% [source:oslo]."}
    failure = check_output(draft, bad, {"research": research}, tokens_out=None, attempt=2)
    assert failure is not None and failure.kind == "hallucination" and failure.attempt == 2
    assert "4700 in no cited source" in failure.message
    assert failure.details["postconditions_failed"] == "grounded"


def test_failures_are_classified_with_the_workflows_recovery_settings() -> None:
    report, retryable = failure_of(BudgetExceededError("max_llm_calls", 3, 2), attempt=1)
    assert (report.kind, retryable) == ("budget_exceeded", False)
    report, retryable = failure_of(RuntimeError("boom"), attempt=1)
    assert (report.kind, retryable) == ("exception", True) and "stack_trace" in report.details
    workflow = load_workflow(EXAMPLE)
    details = recovery_details(workflow, workflow.step("draft"), "timeout")
    assert details["recovery.action"] == "fallback"
    assert details["recovery.fallback_model"] == "gpt-4o"
    assert details["recovery.max_retries"] == "2" and details["recovery.backoff_ms"] == "500"


def test_states_are_canonical_and_merge() -> None:
    one = RunState({"b": 1, "a": {"y": 2, "x": 1}}, {"k": "v"})
    assert one.to_bytes() == b'{"data":{"k":"v"},"outputs":{"a":{"x":1,"y":2},"b":1}}'
    assert RunState.from_bytes(one.to_bytes(), checkpoint_id="c").restored_from == ["c"]
    one.merge(RunState({"c": 3}, {"k": "w"}))
    assert one.outputs == {"b": 1, "a": {"y": 2, "x": 1}, "c": 3} and one.data == {"k": "w"}
    assert one.with_output("d", {"z": 1}, {}).outputs["d"] == {"z": 1}


def test_work_items_round_trip_and_refuse_garbage() -> None:
    item = WorkItem("d", "acme", "e", "w", 1, "s", reason="rollback", restore_checkpoint_id="c")
    assert WorkItem.from_bytes(json.dumps(item.to_record()).encode()) == item
    with pytest.raises(ValueError):
        WorkItem.from_bytes(b'{"unexpected": 1}')
    with pytest.raises(ValueError):
        WorkItem.from_bytes(b"[1]")


def test_the_example_definition_round_trips_through_registration() -> None:
    workflow = load_workflow(EXAMPLE)
    again = parse_workflow_dict(workflow.to_definition())
    assert again.dependencies() == workflow.dependencies()
