"""Read models fed from Kafka: PostgreSQL, Redis, OpenSearch and Timestream projections.

Each read model is a :class:`~omium.projections.base.Projection` with its own consumer group; run
one with ``omium project <name>`` and rebuild one with ``omium replay <name>``.
"""

from omium.projections._lag import PartitionLag, projection_lag
from omium.projections._registry import (
    FACTORIES,
    ProjectionFactory,
    group_id,
    live_runner,
    open_projection,
    topics_of,
)
from omium.projections._replay import (
    REBUILDS,
    ReplayProgress,
    ReplayReport,
    ReplayVerificationError,
    replay,
)
from omium.projections._stores import ReadStores
from omium.projections.postgres._queries import (
    ExecutionFilter,
    InvalidCursorError,
    Page,
    ReadModelQueries,
)

__all__ = [
    # running projections
    "FACTORIES",
    "ProjectionFactory",
    "group_id",
    "live_runner",
    "open_projection",
    "topics_of",
    # watching them
    "PartitionLag",
    "projection_lag",
    # rebuilding them
    "REBUILDS",
    "ReplayProgress",
    "ReplayReport",
    "ReplayVerificationError",
    "replay",
    # reading them (the gateway)
    "ExecutionFilter",
    "InvalidCursorError",
    "Page",
    "ReadModelQueries",
    "ReadStores",
]
