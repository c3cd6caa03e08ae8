"""Idempotency keys, recorded atomically with the events a command writes.

A command may carry an idempotency key. The first command with a given (tenant, scope, key) is
executed and its result is recorded **in the same transaction as its events**, under a unique
constraint. Later commands with the same key get that result back and write nothing. Because the
key and the events commit or roll back together, there is no crash window: either both are
stored or neither is, and two concurrent commands with one key can never both write.

The store is the application's own event recorder (see :class:`IdempotencyStore`): the in-memory
recorder here and the PostgreSQL one in ``_postgres.py``. The record rides along as the
``idempotency`` keyword of ``Application.save()``, which the library passes down to the
recorder's ``insert_events()``.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder

from omium.commands._result import CommandResult

IDEMPOTENCY_KWARG = "idempotency"

ALSO_WRITE_KWARG = "also_write"
"""``save()`` keyword: writes that commit in the events' transaction (see ``also_writing``)."""
"""Name of the ``save()`` keyword that carries an :class:`IdempotencyRecord`."""

IDEMPOTENCY_TABLE = "command_idempotency"
"""PostgreSQL table (in the event store's schema) holding the records."""


@dataclass(frozen=True)
class IdempotencyRecord:
    """The first result of a command sent with an idempotency key.

    Attributes:
        tenant_id: Keys are scoped per tenant.
        scope: Keys are also scoped per command application (``"Executions"`` ...).
        key: The client's idempotency key.
        fingerprint: Hash of the command name and arguments, to detect a key reused for a
            different command.
        result: The result returned to the first caller.
        recorded_at: When the command was accepted.
    """

    tenant_id: str
    scope: str
    key: str
    fingerprint: str
    result: CommandResult
    recorded_at: datetime

    @property
    def lookup(self) -> tuple[str, str, str]:
        """The unique (tenant, scope, key) triple."""
        return (self.tenant_id, self.scope, self.key)


class IdempotencyStore(ABC):
    """Looks up recorded idempotency keys; records are written by ``save(idempotency=...)``."""

    @abstractmethod
    def get_idempotency_record(
        self, tenant_id: str, scope: str, key: str
    ) -> IdempotencyRecord | None:
        """Return the record for this key, or None if the key was never used."""


def command_fingerprint(command: str, arguments: Mapping[str, Any]) -> str:
    """A stable SHA-256 over a command's name and arguments.

    Args:
        command: The handler name (``"complete_step"``).
        arguments: The handler's arguments, without the idempotency key.

    Returns:
        A hex digest; equal for equal commands regardless of argument order.
    """
    canonical = json.dumps(
        {"command": command, "arguments": arguments},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class PopoIdempotentRecorder(POPOApplicationRecorder, IdempotencyStore):
    """In-memory application recorder that also records idempotency keys.

    The key is checked and stored under the recorder's lock together with the events, so it is
    atomic in the same way as the PostgreSQL implementation.
    """

    def __init__(self) -> None:
        """Start with no events and no keys."""
        super().__init__()
        self._idempotency_records: dict[tuple[str, str, str], IdempotencyRecord] = {}

    def _assert_uniqueness(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        super()._assert_uniqueness(stored_events, **kwargs)
        record: IdempotencyRecord | None = kwargs.get(IDEMPOTENCY_KWARG)
        if record is not None and record.lookup in self._idempotency_records:
            msg = f"Idempotency key already recorded: {record.lookup}"
            raise IntegrityError(msg)

    def _update_table(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._update_table(stored_events, **kwargs)
        record: IdempotencyRecord | None = kwargs.get(IDEMPOTENCY_KWARG)
        if record is not None:
            self._idempotency_records[record.lookup] = record
        # In memory there is no transaction to join: the writes run once the events are in.
        for write in kwargs.get(ALSO_WRITE_KWARG, ()):
            write(None)
        return notification_ids

    def get_idempotency_record(
        self, tenant_id: str, scope: str, key: str
    ) -> IdempotencyRecord | None:
        """Return the record for this key, or None if the key was never used."""
        with self._database_lock:
            return self._idempotency_records.get((tenant_id, scope, key))
