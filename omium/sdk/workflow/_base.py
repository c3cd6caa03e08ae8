"""The pydantic base every part of a workflow definition shares, and its name types."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from omium.sdk.workflow._entrypoints import ENTRYPOINT_PATTERN


class DefinitionModel(BaseModel):
    """Strict, immutable model: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        # Attribute docstrings become field descriptions in the published JSON Schema.
        use_attribute_docstrings=True,
        populate_by_name=True,
    )


STEP_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
AGENT_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
NAME_PATTERN = r"^\S(.*\S)?$"

PATTERN_HINTS = {
    STEP_ID_PATTERN: "expected 1-100 letters, digits, '_', '.' or '-', starting with a letter "
    "or digit",
    AGENT_NAME_PATTERN: "expected 1-64 letters, digits, '_' or '-', starting with a letter",
    NAME_PATTERN: "expected no leading or trailing spaces",
    ENTRYPOINT_PATTERN: "expected a Python entry point 'package.module:function'",
}
"""Readable explanations of the patterns, used in validation messages instead of the regex."""

StepId = Annotated[str, Field(pattern=STEP_ID_PATTERN)]
"""A step id: letters, digits, ``_``, ``.``, ``-``; starts with a letter or digit."""

AgentName = Annotated[str, Field(pattern=AGENT_NAME_PATTERN)]
"""An agent name: starts with a letter; letters, digits, ``_`` and ``-``."""

PolicyName = Annotated[str, Field(min_length=1, max_length=200, pattern=NAME_PATTERN)]
"""A policy name as registered with Omium (no outer spaces)."""

Entrypoint = Annotated[str, Field(pattern=ENTRYPOINT_PATTERN, examples=["my_agents.research:run"])]
"""A Python callable as ``package.module:function``."""

FailureKind = Literal[
    "exception",
    "timeout",
    "postcondition_failed",
    "policy_violation",
    "hallucination",
    "budget_exceeded",
    "consensus_failed",
]
"""Failure categories, as in the ``FailureDetected`` event."""

RecoveryAction = Literal["retry", "rollback", "fallback", "escalate", "abort"]
"""Recovery strategies, as in the ``RecoveryPlanned`` event."""
