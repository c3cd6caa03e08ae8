"""The parts of an execution's state: steps, checkpoints and approvals, and their checks."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from commands.errors import InvalidCommandError

INLINE_STATE_MAX_BYTES = 256 * 1024
"""Largest state blob carried inline in an event; larger blobs go to object storage."""

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class StepStatus(StrEnum):
    """Where one step is (a failed step may be scheduled again: a retry)."""

    SCHEDULED = "scheduled"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class CheckpointPosition(StrEnum):
    """Whether a checkpoint was taken before or after its step ran."""

    BEFORE = "before"
    AFTER = "after"


class CheckpointStorage(StrEnum):
    """Where a checkpoint's state blob lives."""

    INLINE = "inline"
    OBJECT = "object"


class ApprovalAction(StrEnum):
    """What a human (or the deadline's default action) decided."""

    APPROVE = "approve"
    REJECT = "reject"


class ApprovalStatus(StrEnum):
    """Whether an approval is still open."""

    PENDING = "pending"
    GRANTED = "granted"
    REJECTED = "rejected"


@dataclass
class StepRecord:
    """One step of a run.

    Attributes:
        step_id: The step's id (from the workflow definition, or chosen by the worker).
        status: Current status.
        agent: The agent that runs it, when given.
        attempts: How many times it was started (1 on the first run, 2 on the first retry...).
        output: Output of the completed attempt.
        error: Error of the last failed attempt.
    """

    step_id: str
    status: StepStatus
    agent: str | None = None
    attempts: int = 0
    output: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class CheckpointRecord:
    """A saved state of the run, before or after a step; never changed once recorded.

    Attributes:
        sequence: The execution's version when the checkpoint was recorded (orders checkpoints).
        steps_at: The steps as they were when the checkpoint was taken, restored by a rollback.
    """

    checkpoint_id: str
    step_id: str
    position: CheckpointPosition
    checksum: str
    size: int
    storage: CheckpointStorage
    inline_state: bytes | None
    object_key: str | None
    sequence: int
    steps_at: dict[str, StepRecord] = field(default_factory=dict)


@dataclass
class ApprovalRecord:
    """A human approval gating one step."""

    step_id: str
    status: ApprovalStatus
    deadline: datetime
    default_action: ApprovalAction
    prompt: str | None = None
    decided_by: str | None = None
    comment: str | None = None
    by_default: bool = False


def check_checkpoint_blob(
    *,
    checksum: str,
    size: int,
    storage: str,
    inline_state: bytes | None,
    object_key: str | None,
) -> None:
    """Check a checkpoint's blob description; inline state must match its checksum and size.

    Raises:
        InvalidCommandError: ``invalid_checksum``, ``invalid_size``, ``invalid_storage``,
            ``inline_state_required``, ``inline_state_too_large``, ``size_mismatch``,
            ``checksum_mismatch``, ``object_key_required``.
    """
    if not isinstance(checksum, str) or not _SHA256_HEX.match(checksum):
        raise _invalid("checksum must be a lowercase hex SHA-256", "invalid_checksum", "checksum")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise _invalid("size must be a non-negative integer", "invalid_size", "size")
    if storage == CheckpointStorage.INLINE:
        _check_inline(checksum, size, inline_state, object_key)
    elif storage == CheckpointStorage.OBJECT:
        if not isinstance(object_key, str) or not object_key or inline_state is not None:
            raise _invalid(
                "object storage needs an object_key and no inline_state",
                "object_key_required",
                "object_key",
            )
    else:
        raise _invalid("storage must be 'inline' or 'object'", "invalid_storage", "storage")


def _check_inline(
    checksum: str, size: int, inline_state: bytes | None, object_key: str | None
) -> None:
    if not isinstance(inline_state, bytes) or object_key is not None:
        raise _invalid(
            "inline storage needs inline_state bytes and no object_key",
            "inline_state_required",
            "inline_state",
        )
    if len(inline_state) > INLINE_STATE_MAX_BYTES:
        raise _invalid(
            f"inline state is larger than {INLINE_STATE_MAX_BYTES} bytes; use object storage",
            "inline_state_too_large",
            "inline_state",
        )
    if len(inline_state) != size:
        raise _invalid("size does not match the inline state", "size_mismatch", "size")
    # Fail closed: a blob that does not match its checksum is never recorded.
    if hashlib.sha256(inline_state).hexdigest() != checksum:
        raise _invalid("inline state does not match its checksum", "checksum_mismatch", "checksum")


def check_choice(value: str, allowed: type[StrEnum], field_name: str) -> None:
    """Refuse a value outside a closed set of choices."""
    if value not in {member.value for member in allowed}:
        choices = ", ".join(member.value for member in allowed)
        raise _invalid(
            f"{field_name} must be one of: {choices}", f"invalid_{field_name}", field_name
        )


def check_text(value: object, field_name: str) -> None:
    """Refuse a missing or blank identifier/text argument."""
    if not isinstance(value, str) or not value.strip():
        raise _invalid(
            f"{field_name} must be a non-empty string", f"invalid_{field_name}", field_name
        )


def _invalid(message: str, reason: str, field_name: str) -> InvalidCommandError:
    return InvalidCommandError(message, reason=reason, field=field_name)


def json_object_copy(value: object, field_name: str) -> dict[str, Any]:
    """A detached copy of a JSON object argument (inputs, outputs), safe to put in an event.

    Raises:
        InvalidCommandError: ``not_json`` when the value is not a JSON-compatible object.
    """
    if not isinstance(value, dict):
        raise _invalid(f"{field_name} must be a JSON object", "not_json", field_name)
    try:
        copy: dict[str, Any] = json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise _invalid(
            f"{field_name} is not JSON-compatible: {exc}", "not_json", field_name
        ) from None
    return copy
