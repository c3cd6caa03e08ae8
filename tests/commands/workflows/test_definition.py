"""Workflow definition checks (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from omium.commands.errors import InvalidCommandError
from omium.commands.workflows import validate_definition
from omium.kernel.dag import find_cycle


def step(step_id: str, *needs: str, agent: str = "agents:echo") -> dict[str, Any]:
    return {"id": step_id, "agent": agent, "needs": list(needs)}


def test_a_valid_definition_comes_back_as_a_detached_json_copy() -> None:
    definition: dict[str, Any] = {
        "steps": (step("plan"), step("act", "plan")),
        "retry": {"max_attempts": 3},
    }

    checked = validate_definition(definition)

    assert checked == {"steps": [step("plan"), step("act", "plan")], "retry": {"max_attempts": 3}}
    checked["steps"][0]["id"] = "changed"
    assert definition["steps"][0]["id"] == "plan"


@pytest.mark.parametrize(
    ("definition", "reason"),
    [
        ([], "not_an_object"),
        ({"steps": [step("a")], "when": {1, 2}}, "not_json"),
        ({"steps": [step("a")], "score": float("nan")}, "not_json"),
        ({}, "no_steps"),
        ({"steps": []}, "no_steps"),
        ({"steps": "a"}, "no_steps"),
        ({"steps": ["a"]}, "invalid_step"),
        ({"steps": [{"agent": "x"}]}, "invalid_step_id"),
        ({"steps": [{"id": " ", "agent": "x"}]}, "invalid_step_id"),
        ({"steps": [{"id": "a"}]}, "missing_agent"),
        ({"steps": [step("a"), step("a")]}, "duplicate_step_id"),
        ({"steps": [{"id": "a", "agent": "x", "needs": "b"}]}, "invalid_needs"),
        ({"steps": [step("a", "ghost")]}, "unknown_step"),
        ({"steps": [step("a"), step("b", "a", "a")]}, "duplicate_need"),
        ({"steps": [step("a", "a")]}, "cycle"),
        ({"steps": [step("a", "c"), step("b", "a"), step("c", "b")]}, "cycle"),
    ],
)
def test_an_invalid_definition_is_refused_with_a_reason(definition: Any, reason: str) -> None:
    with pytest.raises(InvalidCommandError) as refused:
        validate_definition(definition)

    assert refused.value.reason == reason
    assert refused.value.field == "definition"


def test_a_cycle_is_reported_as_a_path() -> None:
    with pytest.raises(InvalidCommandError) as refused:
        validate_definition(
            {"steps": [step("a"), step("b", "a", "d"), step("c", "b"), step("d", "c")]}
        )

    assert refused.value.details["cycle"] == ["b", "d", "c", "b"]
    assert refused.value.details["step_id"] == "b"


def test_the_command_side_and_the_sdk_refuse_a_graph_by_the_same_rule() -> None:
    from omium.sdk.workflow import WorkflowValidationError, parse_workflow_dict

    graph = {"steps": [step("a", "b", agent="echo"), step("b", "a", agent="echo")]}
    with pytest.raises(InvalidCommandError) as refused:
        validate_definition(graph)
    with pytest.raises(WorkflowValidationError) as invalid:
        agents = {"echo": {"entrypoint": "examples.research_report.agents:researcher"}}
        parse_workflow_dict({"name": "w", "agents": agents, **graph})

    codes = [issue.code for issue in invalid.value.errors]
    assert codes == [refused.value.reason] == ["cycle"]


def test_find_cycle_accepts_diamonds_and_long_chains() -> None:
    diamond = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    chain = {str(i): [str(i - 1)] if i else [] for i in range(2000)}

    assert find_cycle(diamond) is None
    assert find_cycle(chain) is None
    assert find_cycle({**chain, "0": ["1999"]}) is not None
