"""What every projection shares: the apply/flush contract, the event source and the runner."""

from projections.base._projection import (
    BatchingProjection,
    Expected,
    FlushResult,
    Offsets,
    Projection,
    event_summary,
)
from projections.base._runner import BatchStats, ProjectionRunner
from projections.base._source import EventSource
from projections.base.errors import (
    OffsetsMovedError,
    ProjectionError,
    ProjectionStoreError,
    StoreRejectedError,
    TopicPartition,
    UnknownProjectionError,
)

__all__ = [
    # the contract
    "BatchingProjection",
    "Expected",
    "FlushResult",
    "Offsets",
    "Projection",
    "event_summary",
    # running
    "BatchStats",
    "EventSource",
    "ProjectionRunner",
    # errors
    "OffsetsMovedError",
    "ProjectionError",
    "ProjectionStoreError",
    "StoreRejectedError",
    "TopicPartition",
    "UnknownProjectionError",
]
