"""The parts of an execution's state: steps, checkpoints and approvals, and their checks."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from omium.commands.errors import InvalidCommandError

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
    ESCALATE = "escalate"
    """Only as a default: at the deadline the approval passes to its escalation's deciders."""


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
        created_at: When it was recorded (its event's timestamp).
        pruned: Retention pruned it: its record stays, its state does not (``inline_state`` is
            dropped, an object may be collected), so nothing may restore it.
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
    created_at: datetime | None = None
    pruned: bool = False


APPROVER_ROLES = ("viewer", "developer", "operator", "admin")
"""Roles an approval may require of its decider, weakest first (the gateway's roles)."""


@dataclass
class ApprovalRecord:
    """A human approval gating one step.

    Attributes:
        approvers: The principals (``sub``) who may decide; empty: anyone allowed to.
        approver_role: The least role a decider must hold, if the request named one.
    """

    step_id: str
    status: ApprovalStatus
    deadline: datetime
    default_action: ApprovalAction
    prompt: str | None = None
    decided_by: str | None = None
    comment: str | None = None
    by_default: bool = False
    approvers: list[str] = field(default_factory=list)
    approver_role: str | None = None
    escalation: EscalationRecord | None = None
    escalated_at: datetime | None = None
    """When the deadline passed the approval on to its escalation's deciders (else None)."""


@dataclass(frozen=True)
class EscalationRecord:
    """Who decides an approval whose default is ``escalate`` once its first deadline passed.

    Attributes:
        approvers: The principals who may decide once escalated; empty: anyone allowed to.
        approver_role: The least role of a decider once escalated.
        timeout_s: How long they have, from the moment of escalation.
        default_action: ``approve`` or ``reject`` when they do not decide in time either.
    """

    approvers: tuple[str, ...]
    approver_role: str | None
    timeout_s: float
    default_action: ApprovalAction

    def to_dict(self) -> dict[str, Any]:
        """The record as plain data (as an event stores it)."""
        return {
            "approvers": list(self.approvers),
            "approver_role": self.approver_role,
            "timeout_s": self.timeout_s,
            "default_action": self.default_action.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EscalationRecord:
        """The record from the plain data of :meth:`to_dict`."""
        return cls(
            approvers=tuple(data.get("approvers") or ()),
            approver_role=data.get("approver_role"),
            timeout_s=float(data["timeout_s"]),
            default_action=ApprovalAction(data["default_action"]),
        )


def check_escalation(
    default_action: str, escalation: Mapping[str, Any] | None
) -> EscalationRecord | None:
    """The escalation of an approval, checked against its default action.

    ``escalate`` needs an escalation (``approvers`` and/or ``approver_role``, ``timeout_s``,
    ``default_action`` approve or reject); any other default must not have one.

    Raises:
        InvalidCommandError: ``invalid_escalation``.
    """
    if default_action != ApprovalAction.ESCALATE:
        if escalation is not None:
            raise _invalid(
                "an escalation needs default_action escalate", "invalid_escalation", "escalation"
            )
        return None
    if not isinstance(escalation, Mapping):
        raise _invalid(
            "default_action escalate needs an escalation (who decides next, and how long)",
            "invalid_escalation",
            "escalation",
        )
    timeout = escalation.get("timeout_s")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise _invalid(
            "escalation.timeout_s must be a positive number", "invalid_escalation", "escalation"
        )
    action = escalation.get("default_action", ApprovalAction.REJECT.value)
    if action not in (ApprovalAction.APPROVE.value, ApprovalAction.REJECT.value):
        raise _invalid(
            "escalation.default_action must be approve or reject",
            "invalid_escalation",
            "escalation",
        )
    role = escalation.get("approver_role")
    named = check_approvers(escalation.get("approvers"), role)
    if not named and role is None:
        raise _invalid(
            "an escalation names its approvers and/or approver_role",
            "invalid_escalation",
            "escalation",
        )
    return EscalationRecord(tuple(named), role, float(timeout), ApprovalAction(action))


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


def check_approvers(approvers: Sequence[str] | None, approver_role: str | None) -> list[str]:
    """The approvers as a sorted list without repeats; refuse a blank name or an unknown role.

    Raises:
        InvalidCommandError: ``invalid_approvers`` or ``invalid_approver_role``.
    """
    if approver_role is not None and approver_role not in APPROVER_ROLES:
        raise _invalid(
            f"approver_role must be one of: {', '.join(APPROVER_ROLES)}",
            "invalid_approver_role",
            "approver_role",
        )
    if approvers is None:
        return []
    if isinstance(approvers, str) or not all(
        isinstance(name, str) and name.strip() for name in approvers
    ):
        raise _invalid("approvers must be a list of names", "invalid_approvers", "approvers")
    return sorted(set(approvers))


def check_decider(
    approval: ApprovalRecord, decided_by: str, decider_roles: Sequence[str] | None
) -> None:
    """Refuse a decider the approval does not allow (``not_an_approver``).

    The role is checked only when the caller's roles are known (``decider_roles``).
    """
    if approval.approvers and decided_by not in approval.approvers:
        raise InvalidCommandError(
            f"{decided_by} may not decide the approval of step {approval.step_id!r}: "
            f"its approvers are {', '.join(approval.approvers)}",
            reason="not_an_approver",
            field="decided_by",
            details={"approvers": list(approval.approvers)},
        )
    required = approval.approver_role
    if required is None or decider_roles is None:
        return
    ranks = [APPROVER_ROLES.index(role) for role in decider_roles if role in APPROVER_ROLES]
    if max(ranks, default=-1) < APPROVER_ROLES.index(required):
        raise InvalidCommandError(
            f"the approval of step {approval.step_id!r} needs a decider with role {required}",
            reason="not_an_approver",
            field="decided_by",
            details={"approver_role": required},
        )


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


USAGE_FIELDS = ("tokens_in", "tokens_out", "cost_usd", "model")
"""What a step's LLM usage may name (``StepCompleted``)."""


def check_usage_number(value: object, field_name: str, *, integer: bool) -> float:
    """A usage count or limit as a float; refused unless a finite number >= 0 (an int when
    ``integer``).

    Raises:
        InvalidCommandError: ``invalid_<field_name>``.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if not integer and isinstance(value, float) and math.isfinite(value) and value >= 0:
        return value
    kind = "an integer" if integer else "a number"
    raise _invalid(
        f"{field_name} must be {kind} of at least 0", f"invalid_{field_name}", field_name
    )


def check_step_usage(usage: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``StepCompleted`` usage fields of ``usage`` (missing ones: 0, ``None``), checked.

    Raises:
        InvalidCommandError: ``invalid_usage`` (an unknown key) or ``invalid_<field>``.
    """
    usage = usage or {}
    unknown = sorted(set(usage) - set(USAGE_FIELDS))
    if unknown:
        raise _invalid(f"usage has unknown fields: {', '.join(unknown)}", "invalid_usage", "usage")
    model = usage.get("model")
    if model is not None:
        check_text(model, "model")
    return {
        "tokens_in": int(check_usage_number(usage.get("tokens_in", 0), "tokens_in", integer=True)),
        "tokens_out": int(
            check_usage_number(usage.get("tokens_out", 0), "tokens_out", integer=True)
        ),
        "cost_usd": check_usage_number(usage.get("cost_usd", 0.0), "cost_usd", integer=False),
        "model": model,
    }
