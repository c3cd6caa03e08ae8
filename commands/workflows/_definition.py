"""Validation of workflow definitions on the command side (pure functions, no I/O).

A definition is a JSON object with a non-empty ``steps`` list; each step has an ``id``, an
``agent`` and optional ``needs`` (ids of steps it depends on), and the steps form a graph by the
rules of :func:`omium.kernel.dag.graph_issues`, the same the SDK's workflow model applies. Every
other key (checkpoints, post-conditions, policies, retry, consensus ...) is kept as given: a run
may be driven step by step through the API, and only the execution worker needs the whole
engine model (``omium.sdk.workflow``), which it applies when it loads a definition.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from omium.commands.errors import InvalidCommandError
from omium.kernel.dag import GraphIssue, graph_issues


def validate_definition(definition: Mapping[str, Any]) -> dict[str, Any]:
    """Check a workflow definition and return a normalised, detached copy of it.

    Args:
        definition: The definition as parsed from YAML/JSON.

    Returns:
        A deep copy that round-trips through JSON (tuples become lists), safe to put in an event.

    Raises:
        InvalidCommandError: With ``reason`` one of ``not_an_object``, ``not_json``,
            ``no_steps``, ``invalid_step``, ``invalid_step_id``, ``missing_agent``,
            ``invalid_needs``, or a graph rule's code (``duplicate_step_id``, ``unknown_step``,
            ``duplicate_need``, ``cycle``; see :func:`omium.kernel.dag.graph_issues`).
    """
    if not isinstance(definition, Mapping):
        raise _invalid("definition must be an object", "not_an_object")
    try:
        copy: dict[str, Any] = json.loads(json.dumps(definition, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise _invalid(f"definition is not JSON-compatible: {exc}", "not_json") from None
    steps = copy.get("steps")
    if not isinstance(steps, list) or not steps:
        raise _invalid("definition needs a non-empty 'steps' list", "no_steps")
    graph = [(_check_step(step, index), _step_needs(step)) for index, step in enumerate(steps)]
    issues = graph_issues(graph)
    if issues:
        raise _refused(issues[0], graph)
    return copy


def _check_step(step: object, index: int) -> str:
    if not isinstance(step, dict):
        raise _invalid(f"step #{index} must be an object", "invalid_step", index=index)
    step_id = step.get("id")
    if not isinstance(step_id, str) or not step_id.strip():
        raise _invalid(f"step #{index} needs a non-empty 'id'", "invalid_step_id", index=index)
    agent = step.get("agent")
    if not isinstance(agent, str) or not agent.strip():
        raise _invalid(f"step {step_id!r} needs an 'agent'", "missing_agent", step_id=step_id)
    return step_id


def _step_needs(step: dict[str, Any]) -> list[str]:
    needs = step.get("needs", [])
    if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
        raise _invalid(
            f"step {step['id']!r}: 'needs' must be a list of step ids",
            "invalid_needs",
            step_id=step["id"],
        )
    return needs


def _refused(issue: GraphIssue, graph: Sequence[tuple[str, Sequence[str]]]) -> InvalidCommandError:
    step_id, needs = graph[issue.index]
    details: dict[str, Any] = {"step_id": step_id}
    if issue.position is not None:
        details["need"] = needs[issue.position]
    if issue.cycle is not None:
        details["cycle"] = issue.cycle
    return _invalid(issue.message, issue.code, **details)


def _invalid(message: str, reason: str, **details: Any) -> InvalidCommandError:
    return InvalidCommandError(message, reason=reason, field="definition", details=details)
