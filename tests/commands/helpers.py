"""Small helpers shared by the command tests."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import Application


def event_names(app: Application[UUID], aggregate_id: UUID) -> list[str]:
    """Names of an aggregate's events, in notification-log order (the log a relay follows)."""
    names: list[str] = []
    start = 1
    while True:
        section = app.notification_log.select(start, app.notification_log.section_size)
        if not section:
            return names
        names += [n.topic.rsplit(".", 1)[-1] for n in section if n.originator_id == aggregate_id]
        start = section[-1].id + 1


def log_position(app: Application[UUID]) -> int:
    """The id of the newest notification (0 when the log is empty)."""
    return app.recorder.max_notification_id() or 0
