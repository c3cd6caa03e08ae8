"""Errors of the projections: all ``OmiumError``; store failures are ``PersistenceError``."""

from __future__ import annotations

from collections.abc import Mapping

from omium.kernel.errors import ConfigurationError, OmiumError, PersistenceError

TopicPartition = tuple[str, int]
"""``(topic, partition)``: where an offset belongs."""


class ProjectionError(OmiumError):
    """Root of the projections' own errors."""


class ProjectionStoreError(ProjectionError, PersistenceError):
    """A read-model store (PostgreSQL, Redis, OpenSearch, Timestream) could not be written.

    It is a ``PersistenceError``: the runner stops the batch uncommitted, so it is redelivered.
    """


class OffsetsMovedError(ProjectionStoreError):
    """The offsets in the store are not the ones this process last wrote.

    Another writer moved them: a replay swapped a rebuilt read model in, or a second instance
    owned the partitions for a while. The batch is discarded; the runner seeks to ``stored``.

    Attributes:
        stored: The next offsets the store holds, by ``(topic, partition)``.
    """

    def __init__(self, stored: Mapping[TopicPartition, int]) -> None:
        self.stored = dict(stored)
        moved = ", ".join(f"{t}[{p}]={o}" for (t, p), o in sorted(self.stored.items()))
        super().__init__(f"stored offsets moved under this writer: {moved or 'none'}")


class StoreRejectedError(ProjectionError):
    """A store refused one event's write for good; the event goes to the DLQ with this reason."""


class UnknownProjectionError(ProjectionError, ConfigurationError):
    """No projection has this name.

    Attributes:
        name: The name asked for.
        known: The names that exist.
    """

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown projection {name!r}; known: {', '.join(known)}")
