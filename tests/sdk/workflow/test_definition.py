"""Valid workflow definitions: the example, defaults, effective settings and the export."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from omium.commands.workflows._definition import validate_definition
from omium.sdk.workflow import (
    CONSENSUS_AGENT,
    DEFAULT_RECOVERY,
    Backoff,
    GroundedCondition,
    JsonSchemaCondition,
    WorkflowDefinition,
    load_workflow,
    parse_workflow,
    parse_workflow_dict,
)

DefinitionFactory = Callable[..., dict[str, Any]]


def test_the_example_loads_with_every_part(example_path: Path) -> None:
    workflow = load_workflow(example_path)

    assert workflow.name == "research-report"
    assert workflow.topological_order() == ["research", "draft", "review"]
    review = workflow.step("review")
    assert review.is_consensus and review.consensus is not None
    assert review.consensus.participants == [
        "reviewer_accuracy",
        "reviewer_clarity",
        "reviewer_compliance",
    ]
    draft = workflow.step("draft")
    assert isinstance(draft.postconditions[0], GroundedCondition)
    assert workflow.checkpoint_for(draft).before is True
    assert workflow.policies.use == ["pii-redaction"]
    assert workflow.policies.budget is not None and workflow.policies.budget.on_exceed == "halt"
    assert workflow.recovery.rule_for("hallucination").action == "rollback"


def test_every_example_is_valid_and_passes_the_command_side_check() -> None:
    examples = Path(__file__).resolve().parents[3] / "examples" / "workflows"
    paths = [p for p in sorted(examples.glob("*.yaml")) if not p.name.endswith(".script.yaml")]
    assert paths
    for path in paths:
        exported = load_workflow(path).to_definition()
        assert validate_definition(exported) == exported


def test_export_makes_the_graph_explicit_and_round_trips(example_path: Path) -> None:
    workflow = load_workflow(example_path)
    exported = workflow.to_definition()

    steps = {step["id"]: step for step in exported["steps"]}
    assert steps["research"]["needs"] == []
    assert steps["review"]["agent"] == CONSENSUS_AGENT
    assert "$schema" not in exported
    json.dumps(exported)  # JSON-compatible, as an event payload must be
    again = parse_workflow_dict(exported, source="exported")
    assert again.to_definition() == exported
    assert again.topological_order() == workflow.topological_order()


def test_steps_without_needs_run_in_list_order(definition_factory: DefinitionFactory) -> None:
    workflow = parse_workflow_dict(definition_factory())

    assert workflow.is_sequential
    assert workflow.dependencies() == {"one": [], "two": ["one"], "three": ["two"]}
    assert workflow.ready_steps([]) == ["one"]
    assert workflow.ready_steps(["one"]) == ["two"]
    exported = workflow.to_definition()
    assert [s["needs"] for s in exported["steps"]] == [[], ["one"], ["two"]]
    assert validate_definition(exported)


def test_with_needs_a_step_without_needs_starts_at_once(
    definition_factory: DefinitionFactory,
) -> None:
    steps = [
        {"id": "one", "agent": "a"},
        {"id": "two", "agent": "b"},
        {"id": "three", "agent": "a", "needs": ["one", "two"]},
    ]
    workflow = parse_workflow_dict(definition_factory(steps=steps))

    assert not workflow.is_sequential
    assert workflow.ready_steps([]) == ["one", "two"]
    assert workflow.ready_steps([], started=["one"]) == ["two"]
    assert workflow.ready_steps(["one"]) == ["two"]
    assert workflow.ready_steps(["one", "two"]) == ["three"]
    assert workflow.downstream_of("two") == ["three"]


def test_effective_settings_fall_back_step_agent_defaults(
    definition_factory: DefinitionFactory,
) -> None:
    data = definition_factory(
        defaults={"timeout_s": 50, "retry": {"max_attempts": 5}},
        steps=[
            {"id": "own", "agent": "a", "timeout_s": 7, "retry": {"max_attempts": 1}},
            {"id": "agent", "agent": "b"},
            {"id": "default", "agent": "a"},
        ],
    )
    data["agents"]["b"]["limits"] = {"timeout_s": 20}
    workflow = parse_workflow_dict(data)

    assert [workflow.timeout_for(s) for s in workflow.steps] == [7, 20, 50]
    assert [workflow.retry_for(s).max_attempts for s in workflow.steps] == [1, 5, 5]
    assert workflow.checkpoint_for(workflow.step("own")).after is True


def test_recovery_defaults_cover_every_failure_kind(definition_factory: DefinitionFactory) -> None:
    data = definition_factory(recovery={"timeout": {"action": "fallback", "fallback_agent": "b"}})
    workflow = parse_workflow_dict(data)

    assert workflow.recovery.rule_for("timeout").fallback_agent == "b"
    assert workflow.recovery.rule_for("exception") == DEFAULT_RECOVERY["exception"]
    assert set(DEFAULT_RECOVERY) == set(type(workflow.recovery).model_fields) - {
        "escalate_after",
        "escalation",
    }


@pytest.mark.parametrize(
    ("attempt", "expected"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (1000, 3.0)]
)
def test_backoff_grows_and_is_capped(attempt: int, expected: float) -> None:
    assert Backoff(initial_s=0.5, multiplier=2, max_s=3).delay_s(attempt) == expected


def test_json_format_and_schema_alias(definition_factory: DefinitionFactory) -> None:
    data = definition_factory()
    data["$schema"] = "https://example.invalid/workflow.schema.json"
    data["steps"][0]["postconditions"] = [{"kind": "json_schema", "schema": {"type": "object"}}]
    workflow = parse_workflow(json.dumps(data), source="flow.json")

    condition = workflow.steps[0].postconditions[0]
    assert isinstance(condition, JsonSchemaCondition)
    assert condition.json_schema == {"type": "object"}
    assert workflow.to_definition()["steps"][0]["postconditions"][0]["schema"] == {"type": "object"}


def test_a_definition_built_in_python_is_checked_too(
    definition_factory: DefinitionFactory,
) -> None:
    data = definition_factory()
    data["steps"][1]["needs"] = ["nowhere"]

    with pytest.raises(ValueError, match=r"steps\[1\]\.needs\[0\]: unknown step 'nowhere'"):
        WorkflowDefinition.model_validate(data)


def test_definitions_are_immutable(definition_factory: DefinitionFactory) -> None:
    workflow = parse_workflow_dict(definition_factory())

    with pytest.raises(ValueError, match="frozen"):
        workflow.name = "other"
