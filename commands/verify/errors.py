"""Errors raised by history verification."""

from __future__ import annotations

from omium.kernel.errors import PersistenceError


class HistoryUnavailableError(PersistenceError):
    """The event store or the Kafka topics could not be read (to the end) for verification."""
