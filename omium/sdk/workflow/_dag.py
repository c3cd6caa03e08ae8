"""Pure helpers on a step graph given as ``step id -> ids it needs`` (declaration order kept)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence


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
