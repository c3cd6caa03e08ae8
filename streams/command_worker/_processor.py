"""The command worker: applies ``CommandIssued`` messages with the command handlers, once each.

The effect lives in the event store, outside the Kafka transaction, so it is made idempotent
instead: the command id is the handler's ``idempotency_key``. If the worker dies after the event
store write but before its transaction commits, the command is delivered again and the handler
returns the first result without writing anything. Every command, applied or refused, is recorded
as one ``CommandRecorded`` audit event in the same transaction as the consumed offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omium.commands import (
    AlreadyExistsError,
    CommandApplications,
    CommandResult,
    ConflictError,
    InvalidCommandError,
    InvalidTransitionError,
    NotFoundError,
    VoteRejectedError,
)
from omium.kernel.errors import DomainError
from omium.kernel.retry import retrying
from omium.streams.base import COMMAND_ISSUED, Context, Processor, derived_id, output_event
from omium.streams.command_worker._registry import apply_command

# HTTP-like status per refusal, as the gateway reports the same errors.
_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (NotFoundError, 404),
    (AlreadyExistsError, 409),
    (InvalidTransitionError, 409),
    (VoteRejectedError, 409),
    (ConflictError, 409),
    (InvalidCommandError, 422),
    (DomainError, 409),
)
_CONFLICT_RETRIES = 3


class CommandWorker(Processor):
    """Consumes ``<prefix>.commands`` and applies each command once.

    Args:
        apps: The command applications (the same the gateway uses).
    """

    name = "commands"

    def __init__(self, apps: CommandApplications) -> None:
        """Use ``apps`` for every command."""
        self._apps = apps
        self.applied = 0
        self.refused = 0

    def input_areas(self) -> Sequence[str]:
        """The command topic."""
        return ["commands"]

    def handle(self, ctx: Context) -> None:
        """Apply one command and record the outcome; a store outage is retried."""
        event = ctx.event
        assert event is not None
        if event["event_type"] != COMMAND_ISSUED:
            return
        payload = event["payload"]
        try:
            result = self._apply(event)
        except DomainError as exc:
            self.refused += 1
            self._record(ctx, event, refused=_reason(exc), status=_status(exc))
            return
        refusal = _undecided(payload["command"], result)
        if refusal is not None:
            self.refused += 1
            self._record(ctx, event, refused=refusal, status=409)
            return
        self.applied += 1
        self._record(ctx, event, refused=None, status=200)

    def _apply(self, event: dict[str, Any]) -> CommandResult:
        payload = event["payload"]
        # A conflict: someone else wrote to the aggregate meanwhile, so a retry loads their
        # version (the stale cached copy was dropped): retry at once; each conflict means some
        # writer made progress, so there is nothing to wait for.
        return retrying(ConflictError, attempts=_CONFLICT_RETRIES)(
            apply_command,
            self._apps,
            command=payload["command"],
            tenant_id=event["tenant_id"],
            target_id=payload["target_id"],
            args_json=payload["args"],
            idempotency_key=str(payload["command_id"]),
        )

    def _record(
        self, ctx: Context, event: dict[str, Any], *, refused: str | None, status: int
    ) -> None:
        payload = event["payload"]
        recorded = {
            "actor": payload["issued_by"],
            "actor_kind": "service",
            "roles": [],
            "command": payload["command"],
            "target": payload["target_id"],
            "result": "refused" if refused else "accepted",
            "reason": refused,
            "status_code": status,
            "request_id": str(event["event_id"]),
            "idempotency_key": str(payload["command_id"]),
            "source_ip": None,
        }
        audit = output_event(
            "CommandRecorded",
            event_id=derived_id("commands", payload["command_id"], "recorded"),
            tenant_id=event["tenant_id"],
            payload=recorded,
            occurred_at=ctx.now,
            causation_id=str(event["event_id"]),
            correlation_id=event.get("correlation_id"),
        )
        ctx.emit(audit, key=payload["target_id"])


def _status(exc: Exception) -> int:
    return next((status for kind, status in _STATUS if isinstance(exc, kind)), 409)


def _reason(exc: Exception) -> str:
    code = getattr(exc, "reason", None)
    return f"{type(exc).__name__}: {exc}" + (f" [{code}]" if code else "")


def _undecided(command: str, result: CommandResult) -> str | None:
    """A ``decide_round`` that found the round still open on the aggregate wrote nothing."""
    if command == "consensus.decide_round" and result.data.get("status") == "open":
        return "the ConsensusRound aggregate is still open (its votes do not decide it yet)"
    return None
