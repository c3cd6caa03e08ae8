"""Recovery suggestions: the gateway's answers as models, and its routes as ops.

A suggestion is a model's diagnosis of a failed step and the fix it proposes; an operator
approves it (the fix is applied at once, possibly edited) or rejects it.

These models are the one definition of the suggestion routes' answers: the gateway answers
with them (``response_model``) and the SDK parses with them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from omium.sdk.client._http import API, Op, model_parser, segment
from omium.sdk.client._models import Accepted, ApiModel

UuidText = Annotated[str, Field(json_schema_extra={"format": "uuid"})]
"""A UUID as the JSON carries it (text); the API's schema says ``format: uuid``."""

FixAction = Literal["retry", "rollback", "fallback", "abort"]


class Suggestion(ApiModel):
    """A recovery suggestion of a run.

    Attributes:
        suggestion_id: Its id.
        execution_id: The run.
        failure_id: The failure diagnosed, when known.
        step_id: The failed step.
        status: ``proposed``, ``approved`` or ``rejected``.
        diagnosis: ``probable_cause``, ``evidence`` (``source``, ``quote``, ``verified``),
            ``similar_failures``, ``confidence``.
        fix: The proposed fix (the applied one, once approved): ``action`` (``retry``,
            ``rollback``, ``fallback``, ``abort``), ``step_id``, ``checkpoint_id``, ``agent`` ...
        requested_by: Who asked for the diagnosis.
        usage: ``provider``, ``model``, ``tokens_in``, ``tokens_out``, ``cost_usd``.
        decided_by: The reviewer.
        comment: The reviewer's comment.
        edited: Whether the approved fix differs from the proposed one.
    """

    suggestion_id: str
    execution_id: UuidText
    failure_id: str | None = None
    step_id: str | None = None
    status: Literal["proposed", "approved", "rejected"]
    diagnosis: dict[str, Any] = Field(
        description="probable_cause, evidence (source, quote, verified), similar_failures, "
        "confidence."
    )
    fix: dict[str, Any]
    requested_by: str
    usage: dict[str, Any] = Field(
        default_factory=dict, description="provider, model, tokens_in, tokens_out, cost_usd."
    )
    decided_by: str | None = None
    comment: str | None = None
    edited: bool = False


class SuggestionList(ApiModel):
    """A run's suggestions, oldest first, and the run's version."""

    execution_id: UuidText
    version: int
    suggestions: list[Suggestion]


class SuggestionAccepted(Accepted):
    """An accepted command on a suggestion; ``fix`` is the fix applied by an approval."""

    execution_id: UuidText
    suggestion_id: str
    fix: dict[str, Any] | None = None


def _path(execution_id: object, *rest: object) -> str:
    return "/".join([f"{API}/executions/{segment(execution_id)}/suggestions", *map(segment, rest)])


def _fields(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def request_diagnosis(
    execution_id: object,
    *,
    step_id: str | None,
    failure_id: str | None,
    expected_version: int | None,
) -> Op[SuggestionAccepted]:
    """``POST /executions/{id}/suggestions``."""
    payload = _fields(step_id=step_id, failure_id=failure_id, expected_version=expected_version)
    return Op(
        "POST",
        _path(execution_id),
        model_parser(SuggestionAccepted),
        json=payload,
        command=True,
    )


def list_suggestions(execution_id: object) -> Op[SuggestionList]:
    """``GET /executions/{id}/suggestions``."""
    return Op("GET", _path(execution_id), model_parser(SuggestionList))


def get_suggestion(execution_id: object, suggestion_id: str) -> Op[Suggestion]:
    """``GET /executions/{id}/suggestions/{suggestion}``."""
    return Op("GET", _path(execution_id, suggestion_id), model_parser(Suggestion))


def decide_suggestion(
    execution_id: object,
    suggestion_id: str,
    verb: Literal["approve", "reject"],
    *,
    fix: dict[str, Any] | None = None,
    comment: str | None,
    expected_version: int | None,
) -> Op[SuggestionAccepted]:
    """``POST /executions/{id}/suggestions/{suggestion}/{approve|reject}``."""
    payload = _fields(fix=fix, comment=comment, expected_version=expected_version)
    return Op(
        "POST",
        _path(execution_id, suggestion_id, verb),
        model_parser(SuggestionAccepted),
        json=payload,
        command=True,
    )
