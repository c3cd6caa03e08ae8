"""Validation of workflow definitions (pure functions, no I/O).

A definition is a JSON object with a non-empty ``steps`` list; each step has a unique ``id``, an
``agent`` and optional ``needs`` (ids of steps it depends on). The dependencies must form a DAG.
Every other key (checkpoints, post-conditions, policies, retry, consensus ...) is kept as given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from omium.commands.errors import InvalidCommandError


def validate_definition(definition: Mapping[str, Any]) -> dict[str, Any]:
    """Check a workflow definition and return a normalised, detached copy of it.

    Args:
        definition: The definition as parsed from YAML/JSON.

    Returns:
        A deep copy that round-trips through JSON (tuples become lists), safe to put in an event.

    Raises:
        InvalidCommandError: With ``reason`` one of ``not_an_object``, ``not_json``,
            ``no_steps``, ``invalid_step``, ``invalid_step_id``, ``duplicate_step_id``,
            ``missing_agent``, ``invalid_needs``, ``unknown_dependency``, ``cycle``.
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
    needs = {_check_step(step, index): _step_needs(step) for index, step in enumerate(steps)}
    if len(needs) != len(steps):
        duplicate = _first_duplicate([step["id"] for step in steps])
        raise _invalid(
            f"step id {duplicate!r} is used twice", "duplicate_step_id", step_id=duplicate
        )
    _check_dependencies(needs)
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


def _check_dependencies(needs: Mapping[str, Sequence[str]]) -> None:
    for step_id, dependencies in needs.items():
        for dependency in dependencies:
            if dependency not in needs:
                raise _invalid(
                    f"step {step_id!r} needs unknown step {dependency!r}",
                    "unknown_dependency",
                    step_id=step_id,
                    dependency=dependency,
                )
    cycle = find_cycle(needs)
    if cycle:
        raise _invalid(
            f"steps depend on each other in a cycle: {' -> '.join(cycle)}", "cycle", cycle=cycle
        )


def find_cycle(needs: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Find one dependency cycle in a step graph.

    Args:
        needs: For each step id, the ids it depends on (all must be keys).

    Returns:
        The cycle as a path that starts and ends with the same step id, or None for a DAG.
    """
    done: set[str] = set()
    for start in needs:
        if start in done:
            continue
        # Iterative DFS: the path is the stack of steps whose dependencies are being walked.
        path: list[str] = [start]
        on_path = {start}
        iterators = [iter(needs[start])]
        while iterators:
            nxt = next(iterators[-1], None)
            if nxt is None:
                iterators.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
            elif nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in done:
                path.append(nxt)
                on_path.add(nxt)
                iterators.append(iter(needs[nxt]))
    return None


def _first_duplicate(ids: Sequence[str]) -> str:
    seen: set[str] = set()
    for step_id in ids:
        if step_id in seen:
            return step_id
        seen.add(step_id)
    raise AssertionError("no duplicate")  # pragma: no cover - callers checked lengths


def _invalid(message: str, reason: str, **details: Any) -> InvalidCommandError:
    return InvalidCommandError(message, reason=reason, field="definition", details=details)
