"""Errors raised by the write side (command handlers and aggregates).

Every error carries machine-readable fields (``aggregate_id``, ``command``, ``current_state``,
``reason`` ...) so the gateway can map them to problem details without parsing message text.
Persistence failures from the event-sourcing library are translated into these classes with
``from exc``; callers never see library or driver exception types.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from omium.kernel.errors import ConcurrencyError, DomainError, PersistenceError


class NotFoundError(DomainError):
    """No aggregate with this id exists for the caller's tenant.

    Another tenant's aggregate is reported exactly like a missing one, so ids never leak across
    tenants.

    Attributes:
        aggregate_id: The id that was looked up.
        aggregate_type: The kind of aggregate looked for (``"Execution"``, ...).
    """

    def __init__(self, aggregate_id: UUID | str, *, aggregate_type: str) -> None:
        """Build the error from its machine-readable fields."""
        self.aggregate_id = aggregate_id
        self.aggregate_type = aggregate_type
        super().__init__(f"{aggregate_type} {aggregate_id} not found")


class AlreadyExistsError(DomainError):
    """An aggregate with the same natural key (tenant + name) already exists.

    Attributes:
        aggregate_id: The id of the existing aggregate.
        aggregate_type: The kind of aggregate.
    """

    def __init__(self, aggregate_id: UUID, *, aggregate_type: str) -> None:
        """Build the error from its machine-readable fields."""
        self.aggregate_id = aggregate_id
        self.aggregate_type = aggregate_type
        super().__init__(f"{aggregate_type} {aggregate_id} already exists")


class InvalidTransitionError(DomainError):
    """A command is not allowed in the aggregate's current state.

    Attributes:
        command: The refused command (``"complete_step"``).
        current_state: The state the aggregate is in (``"cancelled"``).
        aggregate_id: The aggregate that refused it.
    """

    def __init__(self, *, command: str, current_state: str, aggregate_id: UUID) -> None:
        """Build the error from its machine-readable fields."""
        self.command = command
        self.current_state = current_state
        self.aggregate_id = aggregate_id
        super().__init__(f"cannot {command} {aggregate_id}: it is {current_state}")


class InvalidCommandError(DomainError):
    """A command's arguments break an invariant (bad definition, unknown step, ...).

    Attributes:
        reason: A short machine-readable code (``"cycle"``, ``"unknown_step"``, ...).
        field: The offending argument, when one is to blame.
        details: Extra machine-readable context.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Build the error from its machine-readable fields."""
        self.reason = reason
        self.field = field
        self.details = dict(details or {})
        super().__init__(message)


class CheckpointPrunedError(InvalidCommandError):
    """The checkpoint was pruned by its workflow's retention: it is gone, not corrupt.

    Its record (id, step, checksum) stays in the history, its state does not; nothing can roll
    back to it, fork from it or restore it. The gateway answers 410 Gone.

    Attributes:
        checkpoint_id: The pruned checkpoint.
        execution_id: Its run.
        checksum: The SHA-256 its state had.
    """

    def __init__(self, *, checkpoint_id: str, execution_id: Any, checksum: str) -> None:
        """Build the error from its machine-readable fields."""
        self.checkpoint_id = checkpoint_id
        self.execution_id = execution_id
        self.checksum = checksum
        super().__init__(
            f"checkpoint {checkpoint_id!r} of execution {execution_id} was pruned by the "
            "workflow's checkpoint retention; its state is no longer kept",
            reason="checkpoint_pruned",
            field="checkpoint_id",
            details={"checkpoint_id": checkpoint_id, "checksum": checksum},
        )


class InvalidPolicyError(InvalidCommandError):
    """A Rego module was refused because it does not compile.

    Attributes:
        compiler_message: What the Rego compiler reported.
    """

    def __init__(self, compiler_message: str) -> None:
        """Build the error from its machine-readable fields."""
        self.compiler_message = compiler_message
        super().__init__(
            f"Rego module does not compile: {compiler_message}",
            reason="compile_error",
            field="module",
        )


class VoteRejectedError(DomainError):
    """A vote was refused by a consensus round.

    Attributes:
        reason: ``"duplicate_vote"``, ``"not_a_participant"``, ``"round_decided"`` or
            ``"deadline_passed"``.
        round_id: The consensus round.
        participant: Who tried to vote.
    """

    def __init__(self, *, reason: str, round_id: UUID, participant: str) -> None:
        """Build the error from its machine-readable fields."""
        self.reason = reason
        self.round_id = round_id
        self.participant = participant
        super().__init__(f"vote by {participant!r} refused in round {round_id}: {reason}")


class IdempotencyKeyReusedError(InvalidCommandError):
    """An idempotency key was sent again with a different command or arguments.

    Attributes:
        key: The reused key.
    """

    def __init__(self, key: str) -> None:
        """Build the error from its machine-readable fields."""
        self.key = key
        super().__init__(
            f"idempotency key {key!r} was already used for a different command",
            reason="idempotency_key_reused",
            field="idempotency_key",
        )


class ConflictError(ConcurrencyError):
    """The aggregate changed between read and write; reload and decide again.

    Attributes:
        aggregate_id: The aggregate that was written concurrently.
        expected_version: The version the command was decided on, when known.
        actual_version: The version found in the store, when known.
    """

    def __init__(
        self,
        aggregate_id: UUID,
        *,
        expected_version: int | None = None,
        actual_version: int | None = None,
    ) -> None:
        """Build the error from its machine-readable fields."""
        self.aggregate_id = aggregate_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            f"aggregate {aggregate_id} was changed concurrently "
            f"(expected version {expected_version}, found {actual_version})"
        )


class EventStoreError(PersistenceError):
    """The event store could not be read or written (connection, timeout, schema)."""
