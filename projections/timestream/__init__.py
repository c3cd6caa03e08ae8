"""The Timestream read model: metric series (latency, tokens, cost, failures, violations)."""

from omium.projections.timestream._projection import (
    MAX_RECORDS_PER_CALL,
    TimestreamProjection,
    timestream_client,
)
from omium.projections.timestream._records import MAPPERS

__all__ = [
    "MAPPERS",
    "MAX_RECORDS_PER_CALL",
    "TimestreamProjection",
    "timestream_client",
]
