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


StepId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
"""A step id: letters, digits, ``_``, ``.``, ``-``; starts with a letter or digit."""

AgentName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]
"""An agent name: starts with a letter; letters, digits, ``_`` and ``-``."""

PolicyName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]
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
