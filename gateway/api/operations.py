"""``GET /api/v1/operations/lag``: how far each read model is behind the topics it reads.

For operators (the web UI's operations dashboard, like ``omium lag``). It answers Kafka offsets
only: positions and end offsets per topic partition, which hold no tenant's data, so the answer
is the same for every tenant. Each projection is measured on its own; one that cannot be read
is reported with its error instead of failing the whole answer.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from omium.gateway._policy import requires
from omium.gateway._principal import Role
from omium.gateway.api.read_common import Stores
from omium.kernel.errors import OmiumError
from omium.kernel.settings import OmiumSettings
from omium.projections import FACTORIES, projection_lag

router = APIRouter(prefix="/operations", tags=["operations"])

LAG_TIMEOUT_S = 5.0


class PartitionLagView(BaseModel):
    """One partition of one projection."""

    topic: str
    partition: int
    position: int
    end: int
    lag: int


class ProjectionLagView(BaseModel):
    """One projection: its total lag and each partition, or why it could not be measured."""

    projection: str
    lag: int | None
    partitions: list[PartitionLagView]
    error: str | None


class LagReport(BaseModel):
    """Every projection's lag, measured at ``measured_at``."""

    measured_at: datetime
    projections: list[ProjectionLagView]


def _measure(name: str, settings: OmiumSettings) -> ProjectionLagView:
    try:
        rows = projection_lag(name, settings, timeout_s=LAG_TIMEOUT_S)
    except OmiumError as exc:
        return ProjectionLagView(projection=name, lag=None, partitions=[], error=str(exc))
    partitions = [
        PartitionLagView(
            topic=r.topic, partition=r.partition, position=r.position, end=r.end, lag=r.lag
        )
        for r in rows
        if r.end > 0
    ]
    return ProjectionLagView(
        projection=name, lag=sum(p.lag for p in partitions), partitions=partitions, error=None
    )


@router.get(
    "/lag",
    response_model=LagReport,
    summary="Projection lag per projection and partition",
    dependencies=[requires(Role.OPERATOR)],
)
async def projection_lags(stores: Stores) -> LagReport:
    """Each read model's resume point against the end of every partition it reads."""
    names = sorted(FACTORIES)
    views = await asyncio.gather(
        *(run_in_threadpool(_measure, name, stores.settings) for name in names)
    )
    return LagReport(measured_at=datetime.now(UTC), projections=list(views))
