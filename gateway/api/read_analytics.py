"""Analytics over the PostgreSQL read model: runs, failure rate, step latency, tokens and cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from omium.gateway._policy import TenantId, requires
from omium.gateway._principal import Role
from omium.gateway.api.read_common import Stores, pg_connection
from omium.gateway.errors import MalformedRequestError

router = APIRouter(prefix="/analytics", tags=["analytics"])

BUCKETS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
# A query spans at most this many buckets, so one request cannot ask for millions of rows.
MAX_BUCKETS = 2000

Bucket = Annotated[Literal["minute", "hour", "day"], Query(description="Bucket width.")]


class RunBucket(BaseModel):
    """Runs started in one time bucket."""

    bucket: datetime
    runs: int
    completed: int
    failed: int
    stopped: int
    active: int
    failure_rate: float | None
    tokens: int
    cost_usd: float


class StepBucket(BaseModel):
    """Steps finished in one time bucket (for one workflow, agent or model when grouped)."""

    bucket: datetime
    key: str | None
    steps: int
    failed: int
    p50_ms: float | None
    p95_ms: float | None
    tokens_in: int
    tokens_out: int
    cost_usd: float


class RunStats(BaseModel):
    """Run counts per bucket between ``start`` and ``end``."""

    start: datetime
    end: datetime
    bucket: str
    buckets: list[RunBucket]


class StepStats(BaseModel):
    """Step latency and usage per bucket (and group) between ``start`` and ``end``."""

    start: datetime
    end: datetime
    bucket: str
    group_by: str | None
    buckets: list[StepBucket]


def _window(start: datetime | None, end: datetime | None, bucket: str) -> tuple[datetime, datetime]:
    end = end or datetime.now(UTC)
    start = start or end - timedelta(days=1)
    if start.tzinfo is None or end.tzinfo is None:
        raise MalformedRequestError("start and end need a time zone (e.g. Z)", reason="query")
    if start >= end:
        raise MalformedRequestError("start must be before end", reason="query")
    if (end - start) / BUCKETS[bucket] > MAX_BUCKETS:
        raise MalformedRequestError(
            f"more than {MAX_BUCKETS} buckets; use a wider bucket", reason="query"
        )
    return start, end


@router.get(
    "/runs",
    response_model=RunStats,
    summary="Runs and failure rate over time",
    dependencies=[requires(Role.VIEWER)],
)
async def run_stats(
    tenant_id: TenantId,
    stores: Stores,
    bucket: Bucket = "hour",
    start: datetime | None = None,
    end: datetime | None = None,
    workflow_id: Annotated[str | None, Query(max_length=200)] = None,
) -> RunStats:
    """Runs started per bucket; ``failure_rate`` is failed / finished (``null`` if none ended)."""
    start, end = _window(start, end, bucket)
    async with pg_connection(stores) as conn:
        rows = await stores.queries.run_stats(
            conn, tenant_id, start=start, end=end, bucket=BUCKETS[bucket], workflow_id=workflow_id
        )
    buckets = []
    for row in rows:
        finished = row["completed"] + row["failed"] + row["stopped"]
        rate = row["failed"] / finished if finished else None
        buckets.append(
            RunBucket(
                **{
                    **row,
                    "tokens": row["tokens"] or 0,
                    "cost_usd": row["cost_usd"] or 0.0,
                    "failure_rate": rate,
                }
            )
        )
    return RunStats(start=start, end=end, bucket=bucket, buckets=buckets)


@router.get(
    "/steps",
    response_model=StepStats,
    summary="Step latency (p50/p95), tokens and cost over time",
    dependencies=[requires(Role.VIEWER)],
)
async def step_stats(
    tenant_id: TenantId,
    stores: Stores,
    bucket: Bucket = "hour",
    start: datetime | None = None,
    end: datetime | None = None,
    group_by: Literal["workflow", "agent", "model"] | None = None,
) -> StepStats:
    """Finished steps per bucket, optionally per workflow, agent or model."""
    start, end = _window(start, end, bucket)
    async with pg_connection(stores) as conn:
        rows = await stores.queries.step_stats(
            conn, tenant_id, start=start, end=end, bucket=BUCKETS[bucket], group_by=group_by
        )
    buckets = [
        StepBucket(
            **{
                **row,
                "tokens_in": row["tokens_in"] or 0,
                "tokens_out": row["tokens_out"] or 0,
                "cost_usd": row["cost_usd"] or 0.0,
            }
        )
        for row in rows
    ]
    return StepStats(start=start, end=end, bucket=bucket, group_by=group_by, buckets=buckets)
