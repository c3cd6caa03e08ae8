"""The loop that feeds a projection: poll, apply, flush, commit; recover from store outages."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from omium.kernel.errors import PersistenceError
from omium.kernel.kafka import ConsumedEvent
from omium.projections.base._projection import Projection
from omium.projections.base._source import EventSource
from omium.projections.base.errors import OffsetsMovedError, StoreRejectedError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class BatchStats:
    """One turn of the loop.

    Attributes:
        polled: Events decoded in the batch (dead letters not counted).
        dead_lettered: Events the projection refused, sent to the DLQ.
        writes: Store writes of the flush.
        rewound: Whether the batch was dropped because the stored offsets moved.
    """

    polled: int
    dead_lettered: int = 0
    writes: int = 0
    rewound: bool = False


class ProjectionRunner:
    """Runs one projection on one source until told to stop.

    Order per batch: dead letters are made durable, then the store writes the batch (with its
    offsets where it keeps them), then the offsets are committed to the consumer group. A crash
    anywhere redelivers the batch, which idempotent writes absorb.
    """

    def __init__(
        self,
        projection: Projection,
        source: EventSource,
        *,
        max_batch: int = 500,
        poll_timeout_s: float = 0.5,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._projection = projection
        self._source = source
        self._max_batch = max_batch
        self._poll_timeout_s = poll_timeout_s
        self._max_backoff_s = max_backoff_s
        self._rewind_owed = False
        self.events_total = 0

    @property
    def projection(self) -> Projection:
        """The projection being fed."""
        return self._projection

    @property
    def source(self) -> EventSource:
        """Where the events come from."""
        return self._source

    def run_once(self) -> BatchStats:
        """Poll one batch and make it durable.

        Raises:
            PersistenceError: The store or Kafka failed; the batch was dropped and the source
                rewound, so the next turn reads it again.
        """
        if self._rewind_owed:
            # The last abandoned batch could not be rewound (the store was down): reading on
            # would skip it, since the store's offsets still match what the source expects.
            self._rewind()
        events = self._source.poll(max_messages=self._max_batch, timeout_s=self._poll_timeout_s)
        dead = 0
        for consumed in events:
            try:
                self._projection.apply(consumed)
            except PersistenceError:
                self._abandon()
                raise
            except Exception as exc:
                self._source.dead_letter(consumed, exc)
                dead += 1
        offsets = self._source.batch_offsets()
        if not offsets:
            return BatchStats(polled=0)
        refused: list[object] = []

        def reject(events: Sequence[tuple[ConsumedEvent, str]]) -> None:
            for consumed, reason in events:
                self._source.dead_letter(consumed, StoreRejectedError(reason))
            self._source.flush_dead_letters()
            refused.extend(events)

        try:
            self._source.flush_dead_letters()
            result = self._projection.flush(
                offsets, expected=self._source.expected(offsets), reject=reject
            )
        except OffsetsMovedError as moved:
            log.warning(
                "projection.offsets_moved",
                projection=self._projection.name,
                stored={f"{t}[{p}]": o for (t, p), o in moved.stored.items()},
            )
            self._projection.discard()
            self._source.rewind(moved.stored)
            return BatchStats(polled=len(events), rewound=True)
        except PersistenceError:
            self._abandon()
            raise
        if result.rejected:
            # Dead letters must be durable before the offsets move past their events.
            for consumed, reason in result.rejected:
                self._source.dead_letter(consumed, StoreRejectedError(reason))
            self._source.flush_dead_letters()
            dead += len(result.rejected)
        dead += len(refused)
        self._source.mark_flushed(offsets)
        # With offsets in the store the group commit is only for lag monitoring: no need to wait.
        self._source.commit(offsets, asynchronous=self._projection.keeps_offsets)
        self.events_total += len(events)
        return BatchStats(polled=len(events), dead_lettered=dead, writes=result.writes)

    def run(
        self,
        *,
        stop: threading.Event | None = None,
        until: Callable[[ProjectionRunner], bool] | None = None,
        on_batch: Callable[[BatchStats], None] | None = None,
    ) -> None:
        """Loop until ``stop`` is set or ``until(self)`` is true; store outages are retried.

        Args:
            stop: Set by another thread (or a signal handler) to end the loop after a batch.
            until: Checked after every batch, e.g. "all events seen".
            on_batch: Called with each batch's figures (progress display, metrics).
        """
        backoff = 0.1
        while not (stop is not None and stop.is_set()):
            try:
                stats = self.run_once()
                backoff = 0.1
            except PersistenceError as exc:
                log.warning(
                    "projection.store_unavailable",
                    projection=self._projection.name,
                    error=str(exc),
                    retry_in_s=backoff,
                )
                time.sleep(backoff)
                backoff = min(self._max_backoff_s, backoff * 2)
                continue
            if on_batch is not None:
                on_batch(stats)
            if until is not None and until(self):
                return

    def close(self) -> None:
        """Close the source and the projection."""
        try:
            self._source.close()
        finally:
            self._projection.close()

    def _abandon(self) -> None:
        """Drop the batch and read it again from where the store (or the group) says."""
        self._projection.discard()
        try:
            self._rewind()
        except PersistenceError as exc:
            log.warning(
                "projection.rewind_failed", projection=self._projection.name, error=str(exc)
            )

    def _rewind(self) -> None:
        """Seek back to the stored (or committed) offsets; owed until it succeeds."""
        self._rewind_owed = True
        if self._projection.keeps_offsets:
            self._source.rewind(self._projection.stored_offsets())
        else:
            self._source.rewind_to_committed()
        self._rewind_owed = False
