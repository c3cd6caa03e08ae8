"""One command application's notification log, as the relay reads it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

from commands._application import CommandApplication, translate_persistence_errors


class LogSource:
    """Reads one application's notification log and decodes its events with its own mapper.

    Args:
        application: The command application whose ``<name>_events`` table is followed.
    """

    def __init__(self, application: CommandApplication) -> None:
        """Wrap an application; the relay never writes through it."""
        self._app = application

    @property
    def name(self) -> str:
        """The application's name (``ExecutionsApplication``), the key of its position."""
        return self._app.name

    @property
    def table(self) -> str:
        """The events table (``executionsapplication_events``)."""
        return f"{self._app.name.lower()}_events"

    @property
    def channel(self) -> str | None:
        """The NOTIFY channel the recorder signals new events on (PostgreSQL only)."""
        channel = getattr(self._app.recorder, "channel_name", None)
        return channel if isinstance(channel, str) else None

    def read(self, after: int, limit: int) -> Sequence[Notification]:
        """Up to ``limit`` notifications with ids above ``after``, in log order.

        Raises:
            EventStoreError: The event store cannot be read.
        """
        with translate_persistence_errors():
            return self._app.recorder.select_notifications(
                after, limit, inclusive_of_start=False
            )

    def decode(self, stored: StoredEvent) -> Any:
        """The domain event of a stored event, as the application itself decodes it."""
        return self._app.mapper.to_domain_event(stored)

    def history(self, aggregate_id: UUID | str, *, up_to: int) -> Sequence[StoredEvent]:
        """An aggregate's stored events with versions up to ``up_to``, in order.

        Raises:
            EventStoreError: The event store cannot be read.
        """
        uuid = aggregate_id if isinstance(aggregate_id, UUID) else UUID(str(aggregate_id))
        with translate_persistence_errors():
            return self._app.recorder.select_events(uuid, lte=up_to)

    def last_id(self) -> int:
        """The id of the newest notification in the log (0 when empty).

        Raises:
            EventStoreError: The event store cannot be read.
        """
        with translate_persistence_errors():
            return self._app.recorder.max_notification_id() or 0
