"""What every projection shares: the apply/flush contract, the event source and the runner."""

from omium.projections.base._projection import (
    BatchingProjection,
    Expected,
    FlushResult,
    Offsets,
    Projection,
    Reject,
    event_summary,
)
from omium.projections.base._runner import BatchStats, ProjectionRunner
from omium.projections.base._source import EventSource
from omium.projections.base.errors import (
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
    "Reject",
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
