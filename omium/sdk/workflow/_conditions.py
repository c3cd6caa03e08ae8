"""Post-condition specifications: what a step's output must satisfy (checked by the worker).

Each kind is one model with a ``kind`` tag; :data:`PostCondition` is their tagged union. The check
functions live in ``_postconditions.py`` (and ``_grounded.py``), registered per model class.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import Field, NonNegativeInt, PositiveInt, field_validator

from omium.sdk.workflow._base import DefinitionModel, Entrypoint


class ConditionBase(DefinitionModel):
    """Fields every post-condition has."""

    description: str | None = None
    """What the condition guards, shown in failure reports."""
    field: str | None = Field(default=None, pattern=r"^[^.\s][^\s]*$")
    """Check this part of the output instead of all of it: a dotted path of mapping keys and
    list indexes (``report.sections.0.title``)."""


class JsonSchemaCondition(ConditionBase):
    """The output (a JSON value, or a string holding JSON) is valid under a JSON Schema."""

    kind: Literal["json_schema"]
    json_schema: dict[str, Any] = Field(alias="schema")
    """A JSON Schema (draft 2020-12)."""

    @field_validator("json_schema")
    @classmethod
    def _check_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return value


class RegexCondition(ConditionBase):
    """The output text matches (or, with ``must_match: false``, does not match) a pattern."""

    kind: Literal["regex"]
    pattern: str = Field(min_length=1)
    """A Python regular expression."""
    match: Literal["search", "full"] = "search"
    """``search``: anywhere in the text; ``full``: the whole text."""
    must_match: bool = True
    """False inverts the check: the pattern must not be found."""
    ignore_case: bool = False
    multiline: bool = False
    """``^`` and ``$`` match at every line."""

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class MaxTokensCondition(ConditionBase):
    """The output is at most ``max_tokens`` tokens (the provider's count when known)."""

    kind: Literal["max_tokens"]
    max_tokens: PositiveInt


class ContainsCondition(ConditionBase):
    """The output text contains every one (or, with ``mode: any``, one) of the values."""

    kind: Literal["contains"]
    value: str | list[str]
    mode: Literal["all", "any"] = "all"
    ignore_case: bool = False

    @property
    def values(self) -> list[str]:
        """The values as a list."""
        return [self.value] if isinstance(self.value, str) else list(self.value)


class NotContainsCondition(ConditionBase):
    """The output text contains none of the values (banned words, leaked markers ...)."""

    kind: Literal["not_contains"]
    value: str | list[str]
    ignore_case: bool = False

    @property
    def values(self) -> list[str]:
        """The values as a list."""
        return [self.value] if isinstance(self.value, str) else list(self.value)


class GroundedCondition(ConditionBase):
    """Every cited claim is supported by the step's sources (the hallucination check).

    Claims cite sources with ``[source:ID]`` markers in text, or as structured ``claims``
    (see ``docs/workflows.md``). A claim is supported when every source it cites exists, every
    number in it appears in a cited source, and its quote (if any) appears verbatim there or
    at least ``min_overlap`` of its content words do.
    """

    kind: Literal["grounded"]
    min_citations: NonNegativeInt = 1
    """Fail when the output cites fewer claims than this."""
    require_citations: bool = False
    """Every sentence of a text output must cite a source."""
    min_overlap: float = Field(default=0.6, ge=0, le=1)
    """Share of a claim's content words that must appear in its cited sources."""


class CustomCondition(ConditionBase):
    """A Python function decides: ``check(output: StepOutput, options) -> bool | CheckResult``."""

    kind: Literal["custom"]
    check: Entrypoint
    options: dict[str, Any] = Field(default_factory=dict)
    """Passed to the function as its second argument."""


PostCondition = Annotated[
    JsonSchemaCondition
    | RegexCondition
    | MaxTokensCondition
    | ContainsCondition
    | NotContainsCondition
    | GroundedCondition
    | CustomCondition,
    Field(discriminator="kind"),
]
"""Any post-condition, chosen by its ``kind``."""
