"""Checkpoint retention: which of a run's checkpoints a retention rule lets go.

A rule keeps, for each step and position (``before``/``after``), the latest ``keep_last``
checkpoints and/or those younger than ``max_age``; a checkpoint must pass every rule set to
stay. The latest checkpoint of each step at each position always stays, whatever the rules say,
so a run can always roll back to where each of its steps last started or ended (what recovery
and the worker restore from). Pruning removes the state, never the record: the pruned
checkpoint's id, step and checksum stay in the history (``CheckpointsPruned``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from omium.commands.errors import InvalidCommandError
from omium.commands.executions._records import CheckpointRecord


@dataclass(frozen=True)
class CheckpointRetention:
    """How many and how old checkpoints of each step a run keeps.

    Attributes:
        keep_last: Keep the latest N checkpoints of each step and position (at least 1;
            ``None``: any number).
        max_age: Let checkpoints older than this go (``None``: any age).
    """

    keep_last: int | None = None
    max_age: timedelta | None = None

    def __post_init__(self) -> None:
        """Refuse a rule that keeps nothing or everything by mistake."""
        if self.keep_last is None and self.max_age is None:
            raise _invalid("a retention rule needs keep_last or max_age", "keep_last")
        if self.keep_last is not None and (
            isinstance(self.keep_last, bool)
            or not isinstance(self.keep_last, int)
            or self.keep_last < 1
        ):
            raise _invalid("keep_last must be an integer of at least 1", "keep_last")
        if self.max_age is not None and (
            not isinstance(self.max_age, timedelta) or self.max_age <= timedelta(0)
        ):
            raise _invalid("max_age must be a positive duration", "max_age")

    def to_dict(self) -> dict[str, Any]:
        """The rule as recorded in ``CheckpointsPruned`` (``max_age`` in seconds)."""
        return {
            "keep_last": self.keep_last,
            "max_age_s": None if self.max_age is None else self.max_age.total_seconds(),
        }


def prunable(
    checkpoints: Iterable[CheckpointRecord], retention: CheckpointRetention, *, now: datetime
) -> list[CheckpointRecord]:
    """The checkpoints ``retention`` lets go, in creation order (already pruned ones excluded).

    Args:
        checkpoints: A run's checkpoints.
        retention: The rule.
        now: The time ages are measured at.
    """
    groups: dict[tuple[str, str], list[CheckpointRecord]] = {}
    for checkpoint in checkpoints:
        groups.setdefault((checkpoint.step_id, checkpoint.position.value), []).append(checkpoint)
    doomed: list[CheckpointRecord] = []
    for records in groups.values():
        records.sort(key=lambda c: c.sequence)
        # Pruned ones still count as older checkpoints: pruning twice lets nothing more go.
        *older, _latest = records
        for index, checkpoint in enumerate(older):
            if checkpoint.pruned:
                continue
            newer = len(records) - 1 - index
            too_many = retention.keep_last is not None and newer >= retention.keep_last
            too_old = (
                retention.max_age is not None
                and checkpoint.created_at is not None
                and now - checkpoint.created_at > retention.max_age
            )
            if too_many or too_old:
                doomed.append(checkpoint)
    doomed.sort(key=lambda c: c.sequence)
    return doomed


def _invalid(message: str, field: str) -> InvalidCommandError:
    return InvalidCommandError(message, reason="invalid_retention", field=field)
