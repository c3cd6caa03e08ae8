"""Request bodies of the recovery suggestion routes, and their answers from views and results.

The answers' models (``Suggestion``, ``SuggestionList``, ``SuggestionAccepted``) are the SDK's
(:mod:`omium.sdk.client`): one definition for the server and its clients.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from omium.commands import CommandResult
from omium.commands.executions import SuggestionView
from omium.gateway.api._models import (
    Identifier,
    JsonObject,
    RequestModel,
    Text,
    VersionedRequest,
    accepted_fields,
    sorted_mapping,
)
from omium.sdk.client import Suggestion, SuggestionAccepted


class RequestDiagnosis(VersionedRequest):
    """Ask the configured model to diagnose a failed step of the run."""

    step_id: Identifier | None = Field(
        default=None, description="The failed step (default: the run's last failed step)."
    )
    failure_id: Identifier | None = Field(
        default=None, description="The FailureDetected being diagnosed, when known."
    )


class Fix(RequestModel):
    """A fix Omium can apply (an edit of the suggested one)."""

    action: Literal["retry", "rollback", "fallback", "abort"]
    step_id: Identifier | None = None
    checkpoint_id: Identifier | None = Field(default=None, description="For a rollback.")
    agent: Identifier | None = Field(default=None, description="For a fallback.")
    model: Identifier | None = None
    input: JsonObject | None = Field(
        default=None, description="Changed step inputs (refused on approval: not applied yet)."
    )
    reason: Text | None = None


class DecideSuggestion(VersionedRequest):
    """A reviewer's decision (the reviewer is the caller)."""

    comment: Text | None = None


class ApproveSuggestion(DecideSuggestion):
    """Approve a suggestion; ``fix`` replaces the suggested fix (an edit)."""

    fix: Fix | None = None


def suggestion_of(view: SuggestionView) -> Suggestion:
    """The body for a suggestion view."""
    return Suggestion.model_validate(
        {
            "suggestion_id": view.suggestion_id,
            "execution_id": str(view.execution_id),
            "failure_id": view.failure_id,
            "step_id": view.step_id,
            "status": view.status,
            "diagnosis": view.diagnosis,
            "fix": view.fix,
            "requested_by": view.requested_by,
            "usage": view.usage,
            "decided_by": view.decided_by,
            "comment": view.comment,
            "edited": view.edited,
        }
    )


def suggestion_accepted(result: CommandResult) -> SuggestionAccepted:
    """The answer for a command result (stored values only, so replays match)."""
    return SuggestionAccepted(
        execution_id=str(result.aggregate_id),
        suggestion_id=result.data["suggestion_id"],
        # Sorted: the idempotency store (jsonb) keeps no key order, and a replay must
        # answer the same bytes.
        fix=sorted_mapping(dict(result.data["fix"])) if result.data.get("fix") else None,
        **accepted_fields(result),
    )
