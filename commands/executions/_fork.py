"""What a fork of a run starts with: the steps and state blob of one of its parent's checkpoints.

A fork is a new run (a new aggregate) that starts where its parent was at a checkpoint; the
parent is only read. Its steps are the parent's steps as they were at the checkpoint: a step
that had completed stays completed (with its output), any other (scheduled, running, failed)
runs again in the fork. Its state is the checkpoint's blob, or an edited state given with the
fork command (stored inline, checked like any checkpoint).
"""

from __future__ import annotations

import hashlib
from typing import Any

from omium.commands.errors import InvalidCommandError
from omium.commands.executions._records import (
    INLINE_STATE_MAX_BYTES,
    CheckpointRecord,
    CheckpointStorage,
    StepRecord,
    StepStatus,
)


def fork_steps(checkpoint: CheckpointRecord) -> list[dict[str, Any]]:
    """The fork's steps as event data: completed ones kept, the others to run again.

    Returns:
        One dict per step (``step_id``, ``status``, ``agent``, ``attempts``, ``output``), in the
        parent's order.
    """
    steps = []
    for step in checkpoint.steps_at.values():
        done = step.status is StepStatus.COMPLETED
        steps.append(
            {
                "step_id": step.step_id,
                "status": StepStatus.COMPLETED.value if done else StepStatus.SCHEDULED.value,
                "agent": step.agent,
                "attempts": step.attempts if done else 0,
                "output": step.output if done else None,
            }
        )
    return steps


def restored_steps(steps: list[dict[str, Any]]) -> dict[str, StepRecord]:
    """Step records from the event data :func:`fork_steps` made."""
    return {
        item["step_id"]: StepRecord(
            item["step_id"],
            StepStatus(item["status"]),
            item.get("agent"),
            int(item.get("attempts") or 0),
            item.get("output"),
        )
        for item in steps
    }


def fork_blob(checkpoint: CheckpointRecord, state: bytes | None) -> dict[str, Any]:
    """``create_checkpoint`` arguments of the fork's first checkpoint.

    The parent's blob is shared as it is (same checksum; an object-stored blob is referenced,
    not copied); an edited ``state`` is stored inline with its own checksum.

    Raises:
        InvalidCommandError: ``invalid_state`` (not bytes) or ``state_too_large``.
    """
    if state is None:
        return {
            "checksum": checkpoint.checksum,
            "size": checkpoint.size,
            "storage": checkpoint.storage.value,
            "inline_state": checkpoint.inline_state,
            "object_key": checkpoint.object_key,
        }
    if not isinstance(state, bytes):
        raise InvalidCommandError("state must be bytes", reason="invalid_state", field="state")
    if len(state) > INLINE_STATE_MAX_BYTES:
        raise InvalidCommandError(
            f"an edited state is stored inline: at most {INLINE_STATE_MAX_BYTES} bytes",
            reason="state_too_large",
            field="state",
        )
    return {
        "checksum": hashlib.sha256(state).hexdigest(),
        "size": len(state),
        "storage": CheckpointStorage.INLINE.value,
        "inline_state": state,
        "object_key": None,
    }
