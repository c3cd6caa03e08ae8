"""``GET /api/v1/operations/health``: the heartbeats of the processes behind the gateway.

Stream processors (and the orchestrator), projections, the relay and execution workers write a
heartbeat to Redis from their loops (:mod:`omium.kernel.health`): instance, lag, last batch,
partitions, counters. This route lists the deployment's heartbeats (its topic prefix), each
``ok``, ``stale`` (no beat for three of its intervals: hung, dead or cut off from Redis) or
``stopped`` (it said so on a clean exit). Like ``/operations/lag`` it shows infrastructure shared
by every tenant and no tenant's data, for operators.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel
from redis.exceptions import RedisError

from omium.gateway._policy import requires
from omium.gateway._principal import Role
from omium.gateway.api.read_common import ReadModelUnavailableError, Stores
from omium.kernel.health import TTL_S, Heartbeat, index_key

router = APIRouter(prefix="/operations", tags=["operations"])

Status = Literal["ok", "stale", "stopped"]


class ProcessHealth(BaseModel):
    """One process's last heartbeat and what it means now."""

    kind: str
    name: str
    instance_id: str
    host: str
    pid: int
    status: Status
    started_at: datetime
    beat_at: datetime
    age_s: float
    interval_s: float
    lag: int | None
    last_batch_at: datetime | None
    events: int
    partitions: list[int]
    details: dict[str, float | int | str]


class HealthReport(BaseModel):
    """Every heartbeat of the deployment, with counts by status."""

    measured_at: datetime
    ok: int
    stale: int
    stopped: int
    processes: list[ProcessHealth]


def _view(beat: Heartbeat, now: datetime) -> ProcessHealth:
    status: Status = "stopped" if beat.stopped else ("stale" if beat.stale(now) else "ok")
    return ProcessHealth(
        kind=beat.kind,
        name=beat.name,
        instance_id=beat.instance_id,
        host=beat.host,
        pid=beat.pid,
        status=status,
        started_at=beat.started_at,
        beat_at=beat.beat_at,
        age_s=round(max(0.0, (now - beat.beat_at).total_seconds()), 3),
        interval_s=beat.interval_s,
        lag=beat.lag,
        last_batch_at=beat.last_batch_at,
        events=beat.events,
        partitions=list(beat.partitions),
        details=dict(beat.details),
    )


@router.get(
    "/health",
    response_model=HealthReport,
    summary="Heartbeats of processors, projections, the relay and workers",
    dependencies=[requires(Role.OPERATOR)],
)
async def process_health(stores: Stores) -> HealthReport:
    """Each process's last beat, ``stale`` when it missed three of its intervals."""
    redis = stores.redis()
    index = index_key(stores.prefix)
    now = datetime.now(UTC)
    try:
        # Entries whose beat expired (a process gone for an hour) leave the index.
        await redis.zremrangebyscore(index, "-inf", now.timestamp() - TTL_S)
        keys = [str(key) for key in await redis.zrange(index, 0, -1)]
        values = await redis.mget(keys) if keys else []
    except (RedisError, OSError) as exc:
        raise ReadModelUnavailableError(f"Redis unavailable: {exc}") from exc
    processes: list[ProcessHealth] = []
    gone: list[str] = []
    for key, value in zip(keys, values, strict=True):
        if value is None:
            gone.append(key)
            continue
        try:
            processes.append(_view(Heartbeat.from_json(value), now))
        except ValueError:
            continue  # not a heartbeat this gateway can read (a newer format): skip it
    if gone:
        with contextlib.suppress(RedisError, OSError):  # tidying only
            await redis.zrem(index, *gone)
    processes.sort(key=lambda p: (p.kind, p.name, p.instance_id))
    counts = {status: sum(p.status == status for p in processes) for status in ("ok", "stale")}
    return HealthReport(
        measured_at=now,
        ok=counts["ok"],
        stale=counts["stale"],
        stopped=sum(p.status == "stopped" for p in processes),
        processes=processes,
    )
