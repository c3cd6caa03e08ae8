"""Heartbeats of the CLI's long-running parts (``omium worker|relay|project`` and the pipeline).

Each part gets a :class:`~omium.kernel.health.HealthBeacon` on the deployment's Redis; stream
processors and execution workers beat from their own loops, projections from each batch and the
relay from its progress reports. ``GET /api/v1/operations/health`` shows them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from omium.kernel.errors import OmiumError
from omium.kernel.health import DEFAULT_INTERVAL_S, HealthBeacon, Kind, redis_beacon
from omium.kernel.settings import OmiumSettings

if TYPE_CHECKING:
    from omium.commands.relay import RelayProgress
    from omium.projections.base import BatchStats, ProjectionRunner


def beacon(
    settings: OmiumSettings,
    kind: Kind,
    name: str,
    *,
    instance_id: str | None = None,
    interval_s: float = DEFAULT_INTERVAL_S,
) -> HealthBeacon:
    """A beacon on the settings' Redis, keyed by the deployment's topic prefix."""
    return redis_beacon(
        settings.redis.url,
        prefix=settings.kafka.topic_prefix,
        kind=kind,
        name=name,
        instance_id=instance_id,
        interval_s=interval_s,
    )


class ProjectionBeat:
    """``on_batch`` of a projection runner that beats (lag measured against the end offsets)."""

    def __init__(self, beacon: HealthBeacon, runner: ProjectionRunner) -> None:
        """Beat for ``runner``."""
        self._beacon = beacon
        self._runner = runner
        self._last_batch_at: datetime | None = None

    def __call__(self, stats: BatchStats) -> None:
        """Record the batch; beat when due."""
        if stats.polled:
            self._last_batch_at = datetime.now(UTC)
        self._beacon.maybe_beat(self._report)

    def stopped(self) -> None:
        """The last beat, after the runner returned."""
        self._beacon.beat(
            last_batch_at=self._last_batch_at, events=self._runner.events_total, stopped=True
        )

    def _report(self) -> dict[str, Any]:
        source = self._runner.source
        lag: int | None
        try:
            source.refresh_end_offsets(timeout_s=2.0)
            lag = source.lag()
            partitions = sorted({partition for _, partition in source.positions()})
        except OmiumError:
            lag, partitions = None, []
        return {
            "lag": lag,
            "last_batch_at": self._last_batch_at,
            "events": self._runner.events_total,
            "partitions": partitions,
        }


class RelayBeat:
    """``on_progress`` of the relay that beats (lag: stored events not yet on Kafka)."""

    def __init__(
        self, beacon: HealthBeacon, then: Callable[[RelayProgress], None] | None = None
    ) -> None:
        """Beat on every progress report, then call ``then`` (e.g. the CLI's progress line)."""
        self._beacon = beacon
        self._then = then
        self._batches = 0
        self._last_batch_at: datetime | None = None

    def __call__(self, progress: RelayProgress) -> None:
        """Beat with the progress."""
        self._beat(progress, stopped=False)
        if self._then is not None:
            self._then(progress)

    def stopped(self, progress: RelayProgress) -> None:
        """The last beat, after the relay returned."""
        self._beat(progress, stopped=True)

    def _beat(self, progress: RelayProgress, *, stopped: bool) -> None:
        if progress.batches != self._batches:
            self._batches = progress.batches
            self._last_batch_at = datetime.now(UTC)
        self._beacon.beat(
            lag=progress.total_lag,
            last_batch_at=self._last_batch_at,
            events=progress.relayed,
            details={"dead_lettered": progress.dead_lettered, "batches": progress.batches},
            stopped=stopped,
        )
