"""The executions application's handlers for recovery suggestions (a base of the application)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from omium.commands._application import (
    CommandApplication,
    check_tenant_id,
    command_handler,
    translate_persistence_errors,
)
from omium.commands._result import CommandResult, Outcome
from omium.commands.errors import IdempotencyKeyReusedError
from omium.commands.executions._suggestions import SuggestionRecord

if TYPE_CHECKING:
    from omium.commands.executions.domain import Execution


@dataclass(frozen=True)
class SuggestionView:
    """A recovery suggestion of a run, as queries return it."""

    suggestion_id: str
    execution_id: UUID
    failure_id: str | None
    step_id: str | None
    status: str
    diagnosis: dict[str, Any]
    fix: dict[str, Any]
    requested_by: str
    usage: dict[str, Any]
    decided_by: str | None
    comment: str | None
    edited: bool

    @classmethod
    def of(cls, execution_id: UUID, record: SuggestionRecord) -> SuggestionView:
        """View of a suggestion record."""
        return cls(
            suggestion_id=record.suggestion_id,
            execution_id=execution_id,
            failure_id=record.failure_id,
            step_id=record.step_id,
            status=record.status.value,
            diagnosis=dict(record.diagnosis),
            fix=dict(record.fix),
            requested_by=record.requested_by,
            usage=dict(record.usage),
            decided_by=record.decided_by,
            comment=record.comment,
            edited=record.edited,
        )


@dataclass(frozen=True)
class SuggestionsView:
    """A run's suggestions (oldest first) and the run's version they were read at."""

    execution_id: UUID
    version: int
    suggestions: tuple[SuggestionView, ...]


class SuggestionCommands(CommandApplication):
    """Record, approve (applying the fix) and reject recovery suggestions on a run."""

    if TYPE_CHECKING:  # provided by ExecutionsApplication

        def _get(
            self, tenant_id: str, execution_id: UUID, expected_version: int | None = None
        ) -> Execution: ...

    @command_handler
    def suggest_fix(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        suggestion_id: str,
        diagnosis: dict[str, Any],
        fix: dict[str, Any],
        requested_by: str,
        failure_id: str | None = None,
        step_id: str | None = None,
        usage: dict[str, Any] | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome[Execution]:
        """Record a diagnosis of a failure and the fix it proposes (``RecoverySuggested``)."""
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.suggest_fix(
            suggestion_id,
            diagnosis=diagnosis,
            fix=fix,
            requested_by=requested_by,
            failure_id=failure_id,
            step_id=step_id,
            usage=usage,
        )
        return Outcome(execution, {"suggestion_id": suggestion_id})

    @command_handler
    def approve_suggestion(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        suggestion_id: str,
        decided_by: str,
        fix: dict[str, Any] | None = None,
        comment: str | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome[Execution]:
        """Approve a suggestion (``fix`` edits it) and apply its fix in the same save."""
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.approve_suggestion(suggestion_id, decided_by=decided_by, fix=fix, comment=comment)
        applied = execution.suggestions[suggestion_id].fix
        return Outcome(execution, {"suggestion_id": suggestion_id, "fix": applied})

    @command_handler
    def reject_suggestion(
        self,
        tenant_id: str,
        execution_id: UUID,
        *,
        suggestion_id: str,
        decided_by: str,
        comment: str | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome[Execution]:
        """Reject a suggestion; nothing else about the run changes."""
        execution = self._get(tenant_id, execution_id, expected_version)
        execution.reject_suggestion(suggestion_id, decided_by=decided_by, comment=comment)
        return Outcome(execution, {"suggestion_id": suggestion_id})

    def suggestion_for_key(self, tenant_id: str, idempotency_key: str) -> CommandResult | None:
        """The result a ``suggest_fix`` already recorded under ``idempotency_key``, if any.

        A diagnosis asked for twice with one key must answer the first suggestion without
        asking the model again (its second answer would differ, and so would the command).

        Raises:
            IdempotencyKeyReusedError: The key was used for another command.
        """
        check_tenant_id(tenant_id)
        with translate_persistence_errors():
            record = self.idempotency.get_idempotency_record(tenant_id, self.name, idempotency_key)
        if record is None:
            return None
        if "suggestion_id" not in record.result.data or record.result.events[:1] != (
            "RecoverySuggested",
        ):
            raise IdempotencyKeyReusedError(idempotency_key)
        return CommandResult.from_json(record.result.to_json(), replayed=True)

    def get_suggestions(self, tenant_id: str, execution_id: UUID) -> SuggestionsView:
        """A run's suggestions.

        Raises:
            NotFoundError: No such run for this tenant.
        """
        check_tenant_id(tenant_id)
        execution = self._get(tenant_id, execution_id)
        views = tuple(SuggestionView.of(execution.id, r) for r in execution.suggestions.values())
        return SuggestionsView(execution.id, execution.version, views)
