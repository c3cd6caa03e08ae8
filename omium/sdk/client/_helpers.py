"""What the helper methods of both clients share: workflow sources, waiting, paging."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omium.sdk.workflow import CONSENSUS_AGENT, WorkflowDefinition, load_workflow

WorkflowSource = str | os.PathLike[str] | Mapping[str, Any] | WorkflowDefinition
"""A workflow for ``register_workflow``: a YAML/JSON file, a parsed definition, or a dict."""


def workflow_payload(source: WorkflowSource, name: str | None) -> tuple[str, dict[str, Any]]:
    """The name and JSON definition to register for ``source``.

    A file or a :class:`WorkflowDefinition` is validated locally first, so mistakes are reported
    with the file and field path before anything is sent.

    Raises:
        WorkflowValidationError: The file or definition is invalid.
        ValueError: No name was given and the definition has none.
    """
    if isinstance(source, str | os.PathLike):
        source = load_workflow(Path(source))
    if isinstance(source, WorkflowDefinition):
        definition = source.model_dump(mode="json", exclude_none=True, exclude={"schema_uri"})
        for step in definition["steps"]:
            # The write side wants an agent on every step; a consensus step's is the marker.
            step.setdefault("agent", CONSENSUS_AGENT)
    else:
        definition = dict(source)
    chosen = name or definition.get("name")
    if not isinstance(chosen, str) or not chosen:
        raise ValueError("the workflow needs a name: pass name=... or put one in the definition")
    return chosen, definition


class Backoff:
    """Polling intervals for ``wait_for_completion``: quick at first, then steady."""

    def __init__(self, *, first_s: float = 0.05, max_s: float = 1.0) -> None:
        """Start at ``first_s`` and double up to ``max_s``."""
        self._next = first_s
        self._max = max_s

    def next_delay(self, remaining_s: float) -> float:
        """The next pause, never past the deadline."""
        delay = min(self._next, self._max, max(remaining_s, 0.0))
        self._next = min(self._next * 2, self._max)
        return delay
