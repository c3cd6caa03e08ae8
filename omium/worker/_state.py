"""A run's state as checkpoints hold it, and where a step's starting state comes from.

The state is ``{"outputs": {step: output}, "data": {...}}``: the outputs of the steps completed so
far and the free-form ``ctx.state`` agents keep. It is stored as canonical JSON (sorted keys, no
spaces), so equal states have equal checksums and are stored once.

A step starts from, in this order:

1. the checkpoint its work item names (the target of a rollback);
2. its own latest *before* checkpoint (a retry or a takeover resumes where the step began);
3. the latest *after* checkpoint of each step it needs (their results), merged; a needed step
   without one contributes its recorded output.

Every restore goes through :meth:`CheckpointBlobStore.get_state`, which verifies the checksum and
fails closed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from omium.commands import ExecutionsApplication
from omium.commands.executions import CheckpointView, ExecutionView
from omium.kernel.blobs import CheckpointBlobStore, CheckpointRef


@dataclass
class RunState:
    """The outputs of completed steps and the agents' own data.

    Attributes:
        outputs: Step id -> output.
        data: What agents stored in ``ctx.state``.
        restored_from: Checkpoint ids this state was restored from (for traces).
    """

    outputs: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    restored_from: list[str] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        """Canonical JSON: equal states give equal bytes (and checksums)."""
        body = {"outputs": self.outputs, "data": self.data}
        return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()

    @classmethod
    def from_bytes(cls, raw: bytes, *, checkpoint_id: str | None = None) -> RunState:
        """Read a state written by :meth:`to_bytes`."""
        body = json.loads(raw)
        restored = [] if checkpoint_id is None else [checkpoint_id]
        return cls(dict(body.get("outputs") or {}), dict(body.get("data") or {}), restored)

    def merge(self, other: RunState) -> None:
        """Add another state's outputs and data (``other`` wins on equal keys)."""
        self.outputs.update(other.outputs)
        self.data.update(other.data)
        self.restored_from.extend(other.restored_from)

    def with_output(self, step_id: str, output: Any, data: Mapping[str, Any]) -> RunState:
        """The state after ``step_id`` completed with ``output`` and left ``data``."""
        return RunState({**self.outputs, step_id: output}, dict(data))


class StateStore:
    """Restores and saves run states through checkpoints.

    Args:
        executions: The executions application (checkpoint metadata and inline blobs).
        blobs: Where state blobs live (inline or object storage), verified on restore.
    """

    def __init__(self, executions: ExecutionsApplication, blobs: CheckpointBlobStore) -> None:
        """Use ``executions`` for checkpoints and ``blobs`` for their state."""
        self._executions = executions
        self._blobs = blobs

    def restore(self, tenant_id: str, execution_id: UUID, checkpoint_id: str) -> RunState:
        """The state of one checkpoint, checksum verified.

        Raises:
            CorruptCheckpointError: The blob is missing or does not match its checksum.
            BlobStoreError: Object storage is unreachable.
        """
        view = self._executions.get_checkpoint(tenant_id, execution_id, checkpoint_id)
        raw = self._blobs.get_state(ref_of(view), checkpoint_id=checkpoint_id)
        return RunState.from_bytes(raw, checkpoint_id=checkpoint_id)

    def starting_state(
        self,
        run: ExecutionView,
        step_id: str,
        needs: Sequence[str],
        *,
        restore_checkpoint_id: str | None = None,
        known: Mapping[str, RunState] | None = None,
    ) -> RunState:
        """Where ``step_id`` starts from (see the module docstring for the order).

        Args:
            run: The run as the event store has it.
            step_id: The step about to start.
            needs: The steps it needs.
            restore_checkpoint_id: The checkpoint its work item names, if any.
            known: States of checkpoints this worker has just written (checkpoint id ->
                state), used instead of reading them back.
        """
        known = known or {}

        def restore(checkpoint_id: str) -> RunState:
            state = known.get(checkpoint_id)
            if state is None:
                return self.restore(run.tenant_id, run.id, checkpoint_id)
            # As restored: a copy through its stored bytes (the agent may change it).
            return RunState.from_bytes(state.to_bytes(), checkpoint_id=checkpoint_id)

        if restore_checkpoint_id is not None:
            return restore(restore_checkpoint_id)
        own = latest(run.checkpoints, step_id, "before")
        if own is not None:
            return restore(own.checkpoint_id)
        state = RunState()
        outputs = {step.step_id: step.output for step in run.steps}
        for need in needs:
            after = latest(run.checkpoints, need, "after")
            if after is not None:
                state.merge(restore(after.checkpoint_id))
            else:
                state.outputs[need] = outputs.get(need)
        # The run's record is the authority on outputs (a rollback may have changed them).
        state.outputs.update({need: outputs[need] for need in needs if need in outputs})
        return state

    def save(self, state: RunState) -> CheckpointRef:
        """Store a state blob (inline or in object storage) and describe it."""
        return self._blobs.put_state(state.to_bytes())


def latest(
    checkpoints: Sequence[CheckpointView], step_id: str, position: str
) -> CheckpointView | None:
    """The newest checkpoint of ``step_id`` at ``position``, if any."""
    found = [c for c in checkpoints if c.step_id == step_id and c.position == position]
    return max(found, key=lambda c: c.sequence) if found else None


def ref_of(view: CheckpointView) -> CheckpointRef:
    """The blob reference of a checkpoint as the command side recorded it."""
    return CheckpointRef(
        storage="object" if view.storage == "object" else "inline",
        checksum=view.checksum,
        size=view.size,
        inline_state=view.inline_state if view.storage == "inline" else None,
        object_key=view.object_key if view.storage == "object" else None,
    )
