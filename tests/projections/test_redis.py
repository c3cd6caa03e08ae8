"""The Redis projection against real Kafka and Redis: live state, tallies, streams."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis

from omium.kernel.serde import AvroSerde
from omium.kernel.settings import KafkaSettings, OmiumSettings
from omium.projections.base import ProjectionRunner
from omium.projections.redis import RedisProjection
from tests.projections.helpers import Chain, publish, run_of, stream_fields, wait_for

pytestmark = pytest.mark.integration

Factory = Callable[..., Any]


def run_until_offsets(runner: ProjectionRunner, projection: RedisProjection, total: int) -> None:
    def done() -> bool:
        runner.run_once()
        return sum(projection.stored_offsets().values()) >= total

    wait_for(done, every_s=0, what=f"{total} messages projected")


@pytest.fixture
def client(settings: OmiumSettings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis.url, decode_responses=True)


def test_live_state_tallies_and_streams(
    kafka: KafkaSettings,
    serde: AvroSerde,
    redis_projection_factory: Factory,
    runner_factory: Factory,
    client: redis.Redis,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    live = run_of(
        tenant, steps=[("a", "agents.a:run", True), ("b", "agents.b:run", True)], end=None
    )
    done = run_of(tenant)
    vote_round = Chain(tenant)
    vote_round.add("ConsensusRoundOpened", execution_id=uuid.UUID(live.aggregate_id))
    vote_round.add("VoteCast", voter="w", decision="A", weight=1.0)
    vote_round.add("VoteCast", voter="e", decision="B", weight=2.0)
    vote_round.add("VoteCast", voter="r", decision="B", weight=1.0)
    events = [*live.events, *done.events, *vote_round.events]
    # Delivered twice (at-least-once upstream): the seen markers keep the effects single.
    publish(kafka, serde, events + events)
    projection = redis_projection_factory(kafka)
    run_until_offsets(runner_factory(projection, kafka), projection, 2 * len(events))

    keys = projection.keys
    state = client.hgetall(keys.execution(tenant, live.aggregate_id))
    assert state["status"] == "running"
    assert state["current_step_id"] == "b"
    assert state["steps_completed"] == "2"
    assert state["tokens"] == "300"
    assert client.smembers(keys.running(tenant)) == {live.aggregate_id}
    assert client.hget(keys.execution(tenant, done.aggregate_id), "status") == "completed"
    assert client.ttl(keys.execution(tenant, done.aggregate_id)) > 0
    tally = client.hgetall(keys.round(tenant, vote_round.aggregate_id))
    assert (tally["votes"], float(tally["tally:A"]), float(tally["tally:B"])) == ("3", 1.0, 3.0)
    # One entry per event in the run's stream, in order; the tenant stream has them all.
    stream = stream_fields(client, keys.execution_events(tenant, live.aggregate_id))
    own = [e["event_type"] for e in live.events]
    types = [fields["event_type"] for fields in stream]
    # The round's event comes from another topic, so only the run's own events have an order.
    assert [t for t in types if t != "ConsensusRoundOpened"] == own
    assert types.count("ConsensusRoundOpened") == 1
    assert client.xlen(keys.tenant_events(tenant)) == len(events)
