"""Invalid workflow definitions: every error names the file, the field path and the problem."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from omium.kernel.errors import ConfigurationError, OmiumError
from omium.sdk.workflow import (
    WorkflowIssue,
    WorkflowValidationError,
    load_workflow,
    parse_workflow,
    parse_workflow_dict,
)

DefinitionFactory = Callable[..., dict[str, Any]]


def errors_of(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(WorkflowValidationError) as caught:
        parse_workflow_dict(data, source="test.yaml")
    return [(issue.path, issue.code) for issue in caught.value.errors]


def yaml_errors(text: str, source: str = "flow.yaml") -> WorkflowValidationError:
    with pytest.raises(WorkflowValidationError) as caught:
        parse_workflow(textwrap.dedent(text), source=source)
    return caught.value


def test_the_error_is_typed_with_machine_readable_issues() -> None:
    error = yaml_errors(
        """\
        name: broken
        agents:
          a: {entrypoint: "m:f"}
        steps:
          - id: one
            agent: a
            needs: [missing]
        """
    )

    assert isinstance(error, ConfigurationError) and isinstance(error, OmiumError)
    assert error.source == "flow.yaml"
    assert error.errors == [
        WorkflowIssue(
            path="steps[0].needs[0]",
            code="unknown_step",
            message="unknown step 'missing' (steps: one)",
            line=7,
            column=13,
        )
    ]
    assert "flow.yaml:7:13: steps[0].needs[0]: unknown step 'missing'" in str(error)
    assert error.as_dicts()[0]["path"] == "steps[0].needs[0]"


def test_unknown_needs_are_named_by_position(definition_factory: DefinitionFactory) -> None:
    data = definition_factory()
    data["steps"][2]["needs"] = ["one", "ghost"]

    assert errors_of(data) == [("steps[2].needs[1]", "unknown_step")]


def test_a_cycle_is_named_step_by_step(definition_factory: DefinitionFactory) -> None:
    data = definition_factory()
    data["steps"][0]["needs"] = ["three"]
    data["steps"][1]["needs"] = ["one"]
    data["steps"][2]["needs"] = ["two"]

    with pytest.raises(WorkflowValidationError) as caught:
        parse_workflow_dict(data)
    [issue] = caught.value.errors
    assert (issue.path, issue.code) == ("steps[0].needs", "cycle")
    assert "one -> three -> two -> one" in issue.message


def test_a_step_that_needs_itself(definition_factory: DefinitionFactory) -> None:
    data = definition_factory()
    data["steps"][1]["needs"] = ["two"]

    assert errors_of(data) == [("steps[1].needs[0]", "cycle")]


def test_duplicate_ids_and_needs(definition_factory: DefinitionFactory) -> None:
    data = definition_factory()
    data["steps"][2]["id"] = "one"
    data["steps"][1]["needs"] = ["one", "one"]

    assert errors_of(data) == [
        ("steps[2].id", "duplicate_step_id"),
        ("steps[1].needs[1]", "duplicate_need"),
    ]


def test_agents_must_exist(definition_factory: DefinitionFactory) -> None:
    data = definition_factory()
    data["steps"][0]["agent"] = "nobody"
    del data["steps"][1]["agent"]
    data["recovery"] = {"exception": {"action": "fallback", "fallback_agent": "ghost"}}

    assert errors_of(data) == [
        ("steps[0].agent", "unknown_agent"),
        ("steps[1].agent", "missing"),
        ("recovery.exception.fallback_agent", "unknown_agent"),
    ]


def test_consensus_participants_weights_and_rule(definition_factory: DefinitionFactory) -> None:
    data = definition_factory()
    data["steps"].append(
        {
            "id": "vote",
            "agent": "a",
            "consensus": {
                "participants": ["a", "zed"],
                "rule": "weighted",
                "threshold": 0.5,
                "weights": {"a": 2, "b": 1},
            },
        }
    )
    assert errors_of(data) == [
        ("steps[3].agent", "agent_on_consensus_step"),
        ("steps[3].consensus.participants[1]", "unknown_agent"),
        ("steps[3].consensus.weights.b", "unknown_participant"),
    ]

    data["steps"][3] = {"id": "vote", "consensus": {"participants": ["a", "b"], "rule": "k_of_n"}}
    with pytest.raises(WorkflowValidationError) as caught:
        parse_workflow_dict(data)
    [issue] = caught.value.errors
    assert issue.path == "steps[3].consensus"
    assert issue.message == "rule 'k_of_n' needs k"


def test_field_errors_from_the_model_keep_their_paths(
    definition_factory: DefinitionFactory,
) -> None:
    data = definition_factory(recovery={"timeout": {"action": "explode"}})
    data["agents"]["a"]["entrypoint"] = "not an entry point"
    data["steps"][1]["timeout_s"] = -1
    data["steps"][2]["retry"] = {"max_attempts": 0, "bakoff": {}}

    assert errors_of(data) == [
        ("agents.a.entrypoint", "string_pattern_mismatch"),
        ("steps[1].timeout_s", "greater_than"),
        ("steps[2].retry.max_attempts", "greater_than_equal"),
        ("steps[2].retry.bakoff", "extra_forbidden"),
        ("recovery.timeout.action", "literal_error"),
    ]


def test_post_condition_errors_point_inside_the_list(
    definition_factory: DefinitionFactory,
) -> None:
    data = definition_factory()
    data["steps"][0]["postconditions"] = [
        {"kind": "regex", "pattern": "("},
        {"kind": "json_schema", "schema": {"type": 12}},
        {"kind": "spelling"},
        {"pattern": "x"},
        {"kind": "custom", "check": "nope"},
    ]

    with pytest.raises(WorkflowValidationError) as caught:
        parse_workflow_dict(data)
    issues = {issue.path: issue for issue in caught.value.errors}
    assert set(issues) == {
        "steps[0].postconditions[0].pattern",
        "steps[0].postconditions[1].schema",
        "steps[0].postconditions[2]",
        "steps[0].postconditions[3]",
        "steps[0].postconditions[4].check",
    }
    assert "not a valid regular expression" in issues["steps[0].postconditions[0].pattern"].message
    assert "not a valid JSON Schema" in issues["steps[0].postconditions[1].schema"].message
    assert issues["steps[0].postconditions[2]"].message.startswith("unknown kind 'spelling'")
    assert issues["steps[0].postconditions[3]"].message == "missing kind"


def test_missing_top_level_fields() -> None:
    assert errors_of({"name": "x"}) == [("agents", "missing"), ("steps", "missing")]
    assert errors_of([1, 2]) == [("", "not_an_object")]
    assert errors_of(None) == [("", "not_an_object")]


def test_yaml_syntax_errors_name_line_and_column() -> None:
    error = yaml_errors(
        """\
        name: broken
        agents: x
          y: 2
        """
    )

    [issue] = error.errors
    assert issue.code == "yaml_syntax"
    assert (issue.line, issue.column) == (3, 4)
    assert str(error).startswith("flow.yaml: invalid workflow definition (1 problem)")
    assert "flow.yaml:3:4: <root>: mapping values are not allowed here" in str(error)


def test_json_syntax_errors_name_line_and_column() -> None:
    error = yaml_errors('{"name": "x",\n  "agents": }', source="flow.json")

    [issue] = error.errors
    assert (issue.code, issue.line, issue.column) == ("json_syntax", 2, 13)


def test_duplicate_yaml_keys_are_errors() -> None:
    error = yaml_errors(
        """\
        name: twice
        agents:
          a: {entrypoint: "m:f"}
        steps:
          - id: one
            agent: a
            timeout_s: 5
            timeout_s: 50
        """
    )

    assert [(i.path, i.code, i.line) for i in error.errors] == [
        ("steps[0].timeout_s", "duplicate_key", 8)
    ]


def test_json_errors_are_located_too(definition_factory: DefinitionFactory) -> None:
    import json

    data = definition_factory()
    data["steps"][1]["agent"] = "ghost"
    error = yaml_errors(json.dumps(data, indent=2), source="flow.json")

    [issue] = error.errors
    assert issue.path == "steps[1].agent" and issue.line is not None


def test_a_missing_file_is_a_validation_error(tmp_path: Path) -> None:
    with pytest.raises(WorkflowValidationError) as caught:
        load_workflow(tmp_path / "absent.yaml")

    assert caught.value.errors[0].code == "file_not_found"
    assert str(tmp_path / "absent.yaml") in str(caught.value)


def test_load_names_the_file_in_every_issue(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text("name: x\nagents: {}\nsteps: []\n", encoding="utf-8")

    with pytest.raises(WorkflowValidationError) as caught:
        load_workflow(path)
    assert caught.value.source == str(path)
    assert [(i.path, i.line) for i in caught.value.errors] == [("agents", 2), ("steps", 3)]
