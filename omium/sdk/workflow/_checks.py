"""Cross-field checks of a workflow definition: references, duplicates and cycles.

Each problem is reported with the path of the field to fix, so an editor or a CLI can point at
the exact line. Paths are tuples here (``("steps", 2, "needs", 0)``); :func:`format_path` makes
them strings (``steps[2].needs[0]``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from omium.kernel.dag import graph_issues

if TYPE_CHECKING:
    from omium.sdk.workflow._model import Step, WorkflowDefinition

PathPart = str | int
Path = tuple[PathPart, ...]

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Issue:
    """A problem at a path (see the module docstring)."""

    path: Path
    code: str
    message: str


def format_path(path: Sequence[PathPart]) -> str:
    """``("steps", 2, "needs", 0)`` -> ``steps[2].needs[0]``; odd keys are quoted."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


def find_issues(definition: WorkflowDefinition) -> list[Issue]:
    """Every cross-field problem of a definition, in the order of the fields."""
    return [
        *_step_graph(definition),
        *_step_agents(definition),
        *_recovery_agents(definition),
        *_policy_names(definition),
    ]


def _step_graph(definition: WorkflowDefinition) -> Iterator[Issue]:
    steps = [(step.id, list(step.needs or [])) for step in definition.steps]
    for issue in graph_issues(steps):
        path: Path = ("steps", issue.index, issue.field)
        if issue.position is not None:
            path = (*path, issue.position)
        yield Issue(path, issue.code, issue.message)


def _step_agents(definition: WorkflowDefinition) -> Iterator[Issue]:
    agents = definition.agents
    for index, step in enumerate(definition.steps):
        if step.consensus is not None:
            yield from _consensus_agents(definition, index, step)
        elif step.agent is None:
            yield Issue(("steps", index, "agent"), "missing", "a step needs an agent")
        elif step.agent not in agents:
            yield Issue(
                ("steps", index, "agent"),
                "unknown_agent",
                f"unknown agent {step.agent!r} (agents: {', '.join(sorted(agents))})",
            )


def _consensus_agents(definition: WorkflowDefinition, index: int, step: Step) -> Iterator[Issue]:
    from omium.sdk.workflow._model import CONSENSUS_AGENT

    assert step.consensus is not None
    base: tuple[PathPart, ...] = ("steps", index)
    if step.agent is not None and step.agent != CONSENSUS_AGENT:
        yield Issue(
            (*base, "agent"),
            "agent_on_consensus_step",
            "a consensus step has no agent: its participants vote",
        )
    for position, participant in enumerate(step.consensus.participants):
        if participant not in definition.agents:
            yield Issue(
                (*base, "consensus", "participants", position),
                "unknown_agent",
                f"unknown agent {participant!r}",
            )
    for name in step.consensus.weights or {}:
        if name not in step.consensus.participants:
            yield Issue(
                (*base, "consensus", "weights", name),
                "unknown_participant",
                f"{name!r} is not a participant",
            )


def _recovery_agents(definition: WorkflowDefinition) -> Iterator[Issue]:
    recovery = definition.recovery
    for kind in type(recovery).model_fields:
        rule = getattr(recovery, kind)
        agent = getattr(rule, "fallback_agent", None)
        if agent is not None and agent not in definition.agents:
            yield Issue(
                ("recovery", kind, "fallback_agent"),
                "unknown_agent",
                f"unknown agent {agent!r}",
            )


def _policy_names(definition: WorkflowDefinition) -> Iterator[Issue]:
    seen: set[str] = set()
    for index, name in enumerate(definition.policies.use):
        if name in seen:
            yield Issue(("policies", "use", index), "duplicate_policy", f"{name!r} is listed twice")
        seen.add(name)
