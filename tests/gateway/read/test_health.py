"""``GET /operations/health``: heartbeats written by the processes' beacons, read back and judged.

Beacons write to the real Redis under the test's topic prefix; the route reads them through the
app's read stores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import cast

import httpx
import pytest
import redis

from omium.kernel.health import HealthBeacon, Heartbeat, beat_key, index_key
from tests.gateway.read.conftest import ReadModel

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

Auth = Callable[..., dict[str, str]]
ClientFactory = Callable[[], httpx.AsyncClient]


@pytest.fixture
def redis_client(read_model: ReadModel, live_redis: object) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(read_model.settings.redis.url)
    yield client
    prefix = read_model.settings.kafka.topic_prefix
    for key in client.scan_iter(match=f"{prefix}:health*", count=1000):
        client.delete(key)
    client.close()


def old_beat(prefix: str, client: redis.Redis, *, name: str, minutes: int) -> None:
    """A heartbeat written ``minutes`` ago (a process that died then)."""
    at = datetime.now(UTC) - timedelta(minutes=minutes)
    beat = Heartbeat(
        kind="worker",
        name=name,
        instance_id="w-1",
        host="h",
        pid=1,
        started_at=at - timedelta(hours=1),
        beat_at=at,
        interval_s=5.0,
        lag=3,
        events=10,
    )
    key = beat_key(prefix, "worker", name, "w-1")
    client.set(key, beat.to_json(), ex=3600)
    client.zadd(index_key(prefix), {key: at.timestamp()})


async def test_heartbeats_are_listed_with_their_status(
    read_model: ReadModel,
    read_client_factory: ClientFactory,
    auth_factory: Auth,
    redis_client: redis.Redis,
) -> None:
    prefix = read_model.settings.kafka.topic_prefix
    live = HealthBeacon(
        redis_client, prefix=prefix, kind="processor", name="consensus", instance_id="c-1"
    )
    assert live.beat(lag=7, events=42, partitions=[2, 0], details={"aborts": 0})
    done = HealthBeacon(redis_client, prefix=prefix, kind="relay", name="relay", instance_id="r")
    assert done.beat(lag=0, stopped=True)
    old_beat(prefix, redis_client, name="execute", minutes=2)
    # An index entry whose beat expired, and one that is not a heartbeat.
    redis_client.zadd(index_key(prefix), {f"{prefix}:health:worker:gone:x": 1.0e9 + 10**9})
    redis_client.set(f"{prefix}:health:worker:odd:x", b"not json at all {")
    redis_client.zadd(index_key(prefix), {f"{prefix}:health:worker:odd:x": 2.0e9})
    # Another deployment's beat is not ours.
    HealthBeacon(redis_client, prefix=f"{prefix}x", kind="worker", name="execute").beat()

    client = read_client_factory()
    response = await client.get("/api/v1/operations/health", headers=auth_factory("operator"))
    assert response.status_code == 200, response.text
    body = response.json()
    by_name = {p["name"]: p for p in body["processes"]}
    assert set(by_name) == {"consensus", "relay", "execute"}
    consensus = by_name["consensus"]
    assert consensus["status"] == "ok"
    assert (consensus["kind"], consensus["instance_id"], consensus["lag"]) == (
        "processor",
        "c-1",
        7,
    )
    assert consensus["partitions"] == [0, 2]
    assert consensus["events"] == 42
    assert consensus["details"] == {"aborts": 0}
    assert by_name["relay"]["status"] == "stopped"
    assert by_name["execute"]["status"] == "stale"
    assert by_name["execute"]["age_s"] >= 120
    assert (body["ok"], body["stale"], body["stopped"]) == (1, 1, 1)
    # The expired entry left the index; the unreadable one stays (a newer format, maybe).
    # Without scores and without decode_responses, zrange answers bytes (its stub says more).
    raw = cast("list[bytes]", redis_client.zrange(index_key(prefix), 0, -1))
    members = {m.decode() for m in raw}
    assert f"{prefix}:health:worker:gone:x" not in members
    redis_client.delete(f"{prefix}x:health", beat_key(f"{prefix}x", "worker", "execute", "x"))


async def test_health_is_for_operators(
    read_client_factory: ClientFactory, auth_factory: Auth
) -> None:
    client = read_client_factory()
    assert (await client.get("/api/v1/operations/health")).status_code == 401
    for role in ("viewer", "developer"):
        refused = await client.get("/api/v1/operations/health", headers=auth_factory(role))
        assert refused.status_code == 403
        assert refused.json()["required_role"] == "operator"
    empty = await client.get("/api/v1/operations/health", headers=auth_factory("admin"))
    assert empty.status_code == 200
    assert empty.json()["processes"] == []
