"""Errors of the stream processors."""

from __future__ import annotations

from omium.kernel.errors import OmiumError


class StreamsError(OmiumError):
    """A stream processor cannot go on (fenced, fatal Kafka error, state not restorable)."""
