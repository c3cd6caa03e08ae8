"""Step graphs: the one definition of their rules, used by the SDK's model and the command side.

A graph is given as ``step id -> ids it needs`` (declaration order kept) or, to be checked, as the
steps' ``(id, needs)`` in declaration order. :func:`graph_issues` is what makes a graph valid:
unique ids, needs that name other existing steps once each, no cycle. The SDK's workflow model
reports the issues with field paths; the workflows aggregate refuses a definition by the first.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class GraphIssue:
    """A problem of a step graph, at a step's ``id`` or at its ``needs`` (entry ``position``).

    Attributes:
        index: The step's position in the declaration.
        field: ``"id"`` or ``"needs"``.
        position: The entry of ``needs`` at fault; None for the id, or for a whole cycle.
        code: ``duplicate_step_id``, ``unknown_step``, ``duplicate_need`` or ``cycle``.
        message: What is wrong, for people.
        cycle: For ``cycle``: the path, starting and ending with the same id.
    """

    index: int
    field: Literal["id", "needs"]
    position: int | None
    code: str
    message: str
    cycle: list[str] | None = None


def graph_issues(steps: Sequence[tuple[str, Sequence[str]]]) -> list[GraphIssue]:
    """Every problem of a step graph, in declaration order (a cycle last).

    Args:
        steps: Each step's id and the ids it needs, in declaration order.

    Returns:
        The issues; empty for a valid graph. A graph with dangling or duplicate ids is not
        searched for cycles (the search would only add noise).
    """
    issues: list[GraphIssue] = []
    first_index: dict[str, int] = {}
    for index, (step_id, _) in enumerate(steps):
        if step_id in first_index:
            issues.append(
                GraphIssue(
                    index,
                    "id",
                    None,
                    "duplicate_step_id",
                    f"step id {step_id!r} is already used by steps[{first_index[step_id]}]",
                )
            )
        else:
            first_index[step_id] = index
    for index, (step_id, needs) in enumerate(steps):
        seen: set[str] = set()
        for position, need in enumerate(needs):
            problem = _need_problem(step_id, need, first_index, seen)
            if problem is not None:
                issues.append(GraphIssue(index, "needs", position, *problem))
            seen.add(need)
    if issues:
        return issues
    cycle = find_cycle({step_id: list(needs) for step_id, needs in steps})
    if cycle:
        text = f"steps depend on each other in a cycle: {' -> '.join(cycle)}"
        issues.append(GraphIssue(first_index[cycle[0]], "needs", None, "cycle", text, cycle))
    return issues


def _need_problem(
    step_id: str, need: str, ids: Collection[str], seen: Collection[str]
) -> tuple[str, str] | None:
    if need == step_id:
        return "cycle", f"step {step_id!r} needs itself (a cycle)"
    if need not in ids:
        return "unknown_step", f"unknown step {need!r} (steps: {', '.join(sorted(ids))})"
    if need in seen:
        return "duplicate_need", f"step {need!r} is listed twice"
    return None


def find_cycle(needs: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Find one dependency cycle.

    Args:
        needs: For each step id, the ids it needs (ids that are not keys are ignored).

    Returns:
        The cycle as a path that starts and ends with the same id (``a -> b -> a`` is
        ``["a", "b", "a"]``), or None when the graph is acyclic.
    """
    done: set[str] = set()
    for start in needs:
        if start in done:
            continue
        # Iterative DFS: the path is the stack of steps whose dependencies are being walked.
        path = [start]
        on_path = {start}
        pending = [iter(needs[start])]
        while pending:
            nxt = next(pending[-1], None)
            if nxt is None:
                pending.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
            elif nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            elif nxt in needs and nxt not in done:
                path.append(nxt)
                on_path.add(nxt)
                pending.append(iter(needs[nxt]))
    return None


def topological_order(needs: Mapping[str, Sequence[str]]) -> list[str]:
    """Order steps so each comes after everything it needs; ties keep declaration order.

    Args:
        needs: An acyclic graph whose dependencies are all keys.

    Returns:
        Every key once.

    Raises:
        ValueError: The graph has a cycle (its path is in the message).
    """
    order: list[str] = []
    placed: set[str] = set()
    # Repeated scans keep declaration order among ready steps; workflows have tens of steps.
    while len(order) < len(needs):
        ready = ready_steps(needs, placed)
        if not ready:
            cycle = find_cycle(needs) or []
            raise ValueError(f"steps depend on each other in a cycle: {' -> '.join(cycle)}")
        order.extend(ready)
        placed.update(ready)
    return order


def ready_steps(
    needs: Mapping[str, Sequence[str]],
    completed: Collection[str],
    *,
    started: Collection[str] = (),
) -> list[str]:
    """Steps that may start now.

    Args:
        needs: The step graph.
        completed: Ids of completed steps.
        started: Ids of steps already running (or otherwise taken), which are not returned.

    Returns:
        Ids not in ``completed`` or ``started`` whose needs are all completed, in declaration
        order.
    """
    done = set(completed)
    taken = done.union(started)
    return [sid for sid, deps in needs.items() if sid not in taken and all(d in done for d in deps)]


def descendants(needs: Mapping[str, Sequence[str]], step_id: str) -> list[str]:
    """Steps that depend on ``step_id`` directly or transitively, in topological order."""
    affected = {step_id}
    result: list[str] = []
    for sid in topological_order(needs):
        if sid != step_id and any(dep in affected for dep in needs[sid]):
            affected.add(sid)
            result.append(sid)
    return result
