"""The published JSON Schema: up to date, and in agreement with the model on examples."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from omium.sdk.workflow import WorkflowValidationError, parse_workflow_dict
from omium.sdk.workflow.__main__ import main
from omium.sdk.workflow._schema import SCHEMA_PATH, render_schema

DefinitionFactory = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_the_published_schema_is_up_to_date() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_schema(), (
        "schemas/workflow/workflow.schema.json is stale: run python -m omium.sdk.workflow schema"
    )


def test_the_schema_accepts_the_example(
    validator: Draft202012Validator, example_path: Path
) -> None:
    data = yaml.safe_load(example_path.read_text(encoding="utf-8"))

    assert list(validator.iter_errors(data)) == []
    parse_workflow_dict(data)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(colour="blue"),
        lambda d: d["steps"][0].update(timeout_s=0),
        lambda d: d["steps"][0].update(postconditions=[{"kind": "spelling"}]),
        lambda d: d["agents"]["a"].update(entrypoint="no colon"),
        lambda d: d.update(recovery={"timeout": {"action": "pray"}}),
    ],
)
def test_schema_and_model_reject_the_same_field_errors(
    validator: Draft202012Validator,
    definition_factory: DefinitionFactory,
    change: Callable[[dict[str, Any]], None],
) -> None:
    data = definition_factory()
    assert list(validator.iter_errors(data)) == []
    change(data)

    assert list(validator.iter_errors(data)) != []
    with pytest.raises(WorkflowValidationError):
        parse_workflow_dict(data)


def test_schema_command_checks_and_writes(tmp_path: Path) -> None:
    target = tmp_path / "workflow.schema.json"

    assert main(["schema", "--check", "--output", str(target)]) == 1
    assert main(["schema", "--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == render_schema()
    assert main(["schema", "--check", "--output", str(target)]) == 0


def test_validate_command(
    tmp_path: Path, example_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nagents: {}\nsteps: []\n", encoding="utf-8")

    assert main(["validate", str(example_path)]) == 0
    assert main(["validate", "--json", str(bad)]) == 1
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert report["file"] == str(bad)
    assert [error["path"] for error in report["errors"]] == ["agents", "steps"]
