"""Server-Sent Events: parsing the stream, and the bookkeeping that makes it resumable.

The gateway's run stream gives every event an ``id:`` (its resume point) and ends after the run's
final event. :class:`StreamCursor` remembers the last id seen, so a dropped connection is
reopened with ``Last-Event-ID`` and nothing is delivered twice or skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from omium.sdk.client._errors import OmiumConnectionError
from omium.sdk.client._read_models import RunEvent

TERMINAL_EVENTS = frozenset(
    {"ExecutionCompleted", "ExecutionFailed", "ExecutionHalted", "ExecutionCancelled"}
)


@dataclass
class SseParser:
    """Turns lines of a ``text/event-stream`` into :class:`RunEvent` objects.

    Attributes:
        retry_s: The reconnection delay the server asked for (``retry:``), in seconds.
    """

    retry_s: float | None = None
    _id: str | None = None
    _event: str | None = None
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> RunEvent | None:
        """Take one line (without its line break); return an event when a blank line ends one."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the server's heartbeat
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            self._id = value
        elif name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "retry" and value.isdigit():
            self.retry_s = int(value) / 1000
        return None

    def _dispatch(self) -> RunEvent | None:
        data, event_id, event_type = "\n".join(self._data), self._id, self._event
        self._data, self._event = [], None
        if not data or event_id is None:
            return None
        fields = json.loads(data)
        fields.setdefault("cursor", event_id)
        fields.setdefault("event_type", event_type or "message")
        return RunEvent.model_validate(fields)


@dataclass
class StreamCursor:
    """Where a run's stream is: the last event delivered, and whether the run has ended.

    Attributes:
        last_event_id: Resume point (``Last-Event-ID``) for the next connection.
        ended: A final event (completed, failed, halted, cancelled) was delivered.
        quiet_reconnects: Connections in a row that ended without delivering anything.
    """

    last_event_id: str | None = None
    ended: bool = False
    quiet_reconnects: int = 0
    failures: int = 0

    def delivered(self, event: RunEvent) -> None:
        """Record a delivered event."""
        self.last_event_id = event.cursor
        self.quiet_reconnects = 0
        self.failures = 0
        if event.event_type in TERMINAL_EVENTS:
            self.ended = True

    def headers(self) -> dict[str, str]:
        """Headers for the next connection."""
        headers = {"Accept": "text/event-stream"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        return headers

    def connection_failed(self, exc: Exception, max_attempts: int, path: str) -> None:
        """Count a dropped or refused connection.

        Raises:
            OmiumConnectionError: ``max_attempts`` connections in a row failed.
        """
        self.failures += 1
        if self.failures >= max_attempts:
            raise OmiumConnectionError(
                f"GET {path} failed {self.failures} times in a row: {type(exc).__name__}: {exc}",
                method="GET",
                url=path,
            ) from exc

    def should_reconnect(self, *, delivered_any: bool, max_quiet: int) -> bool:
        """Whether to open the stream again after a connection ended.

        The gateway closes the stream after the final event, and also when the run had already
        ended before we resumed; a connection that delivers nothing twice in a row means there
        is nothing more to come.
        """
        if self.ended:
            return False
        self.quiet_reconnects = 0 if delivered_any else self.quiet_reconnects + 1
        return self.quiet_reconnects <= max_quiet
