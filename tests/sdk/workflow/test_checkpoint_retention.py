"""``policies.checkpoints`` in a workflow definition: keep_last and max_age, checked."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from omium.sdk.workflow import WorkflowValidationError, parse_workflow_dict

BASE: dict[str, Any] = {
    "name": "retained",
    "agents": {"writer": {"entrypoint": "agents.writer:run"}},
    "steps": [{"id": "draft", "agent": "writer"}],
}


def with_retention(retention: Any) -> dict[str, Any]:
    return {**BASE, "policies": {"checkpoints": retention}}


@pytest.mark.parametrize(
    ("max_age", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("30m", timedelta(minutes=30)),
        ("1.5h", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(days=14)),
    ],
)
def test_max_age_takes_a_number_and_a_unit(max_age: str, expected: timedelta) -> None:
    definition = parse_workflow_dict(with_retention({"keep_last": 3, "max_age": max_age}))

    rule = definition.policies.checkpoints
    assert rule is not None and rule.keep_last == 3 and rule.max_age_delta() == expected


def test_no_retention_keeps_everything() -> None:
    assert parse_workflow_dict(BASE).policies.checkpoints is None


@pytest.mark.parametrize(
    "retention",
    [{}, {"keep_last": 0}, {"max_age": "7 days"}, {"max_age": "7"}, {"keep": 3}],
)
def test_a_rule_that_keeps_nothing_or_is_misspelt_is_refused(retention: Any) -> None:
    with pytest.raises(WorkflowValidationError):
        parse_workflow_dict(with_retention(retention))
