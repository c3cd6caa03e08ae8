"""Replays rebuild a read model equal to the live one and swap it in under a live writer."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import redis
from typer.testing import CliRunner

from omium.cli import app
from omium.kernel.errors import ConfigurationError
from omium.kernel.serde import AvroSerde
from omium.kernel.settings import KafkaSettings, OmiumSettings
from omium.projections import ReplayProgress, replay
from omium.projections.opensearch import READ_MODELS, OpenSearchProjection
from omium.projections.postgres import PostgresProjection
from omium.projections.redis import RedisProjection
from tests.projections.helpers import Chain, publish, run_of, single, stream_fields, wait_for
from tests.projections.test_postgres import everything, run_until_offsets

pytestmark = pytest.mark.integration

Factory = Callable[..., Any]


def snapshot(pg: psycopg.Connection, schema: str) -> dict[str, set[tuple[Any, ...]]]:
    """Every row of every read-model table (offsets and migrations left out)."""
    tables = [
        r[0]
        for r in pg.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name NOT IN ('projection_offsets', 'schema_migrations')",
            (schema,),
        )
    ]
    return {
        t: {
            tuple(str(v) for v in row)
            for row in pg.execute(f"SELECT * FROM {schema}.{t}").fetchall()
        }
        for t in tables
    }


def test_postgres_replay_equals_the_live_model_and_the_live_writer_carries_on(
    kafka: KafkaSettings,
    serde: AvroSerde,
    settings: OmiumSettings,
    pg_projection_factory: Factory,
    runner_factory: Factory,
    pg: psycopg.Connection,
) -> None:
    tenants = [f"t-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    events = [e for tenant in tenants for e in everything(tenant)]
    publish(kafka, serde, events)
    live: PostgresProjection = pg_projection_factory(kafka)
    runner = runner_factory(live, kafka)
    run_until_offsets(runner, live, len(events))
    before = snapshot(pg, live.schema)
    index_sql = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s ORDER BY 1"
    indexes = pg.execute(index_sql, (live.schema,)).fetchall()

    env = settings.model_copy(update={"kafka": kafka})
    seen: list[ReplayProgress] = []
    report = replay("postgres", env, serde, workers=2, on_progress=seen.append)

    assert report.events == len(events)
    assert report.workers == 2
    last = seen[-1]
    assert (last.lag, last.total, last.events, last.workers) == (0, len(events), len(events), 2)
    assert last.eta_s == 0 and last.rate == pytest.approx(last.events / last.elapsed_s)
    assert all(p.eta_s is None or p.eta_s >= 0 for p in seen)
    # The secondary indexes were dropped for the load and built again before the swap.
    assert pg.execute(index_sql, (live.schema,)).fetchall() == indexes
    assert report.counts == report.live_counts
    assert snapshot(pg, live.schema) == before  # the swapped-in copy has exactly the same rows
    leftovers = pg.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{live.schema}__%",)
    ).fetchall()
    assert leftovers == []

    # The live writer's next batch meets the replay's offsets, re-seeks, and goes on.
    extra = [single("CommandRecorded", tenants[0]) for _ in range(3)]
    publish(kafka, serde, extra)
    run_until_offsets(runner, live, len(events) + len(extra))
    audit = pg.execute(
        f"SELECT count(*) FROM {live.schema}.audit_log WHERE tenant_id = %s", (tenants[0],)
    ).fetchone()
    assert audit == (1 + len(extra),)


def documents(projection: OpenSearchProjection, prefix: str) -> dict[str, dict[str, Any]]:
    found = {}
    for model in READ_MODELS:
        target = f"{prefix}-{model}"
        projection.client.refresh(target)
        hits = projection.client.request("POST", f"/{target}/_search", body={"size": 1000})["hits"][
            "hits"
        ]
        found.update({f"{model}/{h['_id']}": h["_source"] for h in hits})
    return found


def test_opensearch_replay_equals_the_live_model(
    kafka: KafkaSettings,
    serde: AvroSerde,
    settings: OmiumSettings,
    opensearch_projection_factory: Factory,
    runner_factory: Factory,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    failure_id = uuid.uuid4()
    events = [
        *(single("SpanRecorded", tenant, span_id=f"{i:016x}") for i in range(20)),
        single("FailureDetected", tenant, failure_id=failure_id),
        single("RecoveryPlanned", tenant, failure_id=failure_id),
        *(single("CommandRecorded", tenant) for _ in range(5)),
    ]
    publish(kafka, serde, events)
    live: OpenSearchProjection = opensearch_projection_factory(kafka)
    runner = runner_factory(live, kafka)
    wait_for(
        lambda: runner.run_once() is not None and runner.events_total >= len(events),
        every_s=0,
        what="live projection",
    )
    before = documents(live, kafka.topic_prefix)
    old_indices = {m: live.client.alias_targets(f"{kafka.topic_prefix}-{m}") for m in READ_MODELS}

    report = replay("opensearch", settings.model_copy(update={"kafka": kafka}), serde)

    assert report.counts == {"spans": 20, "failures": 1, "audit": 5}
    assert documents(live, kafka.topic_prefix) == before
    for model, indices in old_indices.items():
        now = live.client.alias_targets(f"{kafka.topic_prefix}-{model}")
        assert now != indices and len(now) == 1


def redis_state(client: redis.Redis, prefix: str) -> dict[str, Any]:
    """Every live key of a read model by name: hashes and sets as they are, streams as their
    entries' fields (entry ids start again in a rebuild); markers and offsets left out. A stream
    interleaves aggregates of several partitions in no set order, so it is compared as each
    aggregate's entries in order."""
    found: dict[str, Any] = {}
    readers: dict[str, Callable[[str], Any]] = {
        "hash": lambda k: client.hgetall(k),
        "set": lambda k: client.smembers(k),
        "stream": lambda k: stream_fields(client, k),
    }
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        kind = key[len(prefix) + 1 :].split(":", 1)[0]
        if kind in ("seen", "offsets", "epoch"):
            continue
        found[key] = readers[str(client.type(key))](key)
        if isinstance(found[key], list):
            per_aggregate: dict[str, list[dict[str, str]]] = {}
            for fields in found[key]:
                per_aggregate.setdefault(fields["aggregate_id"], []).append(fields)
            found[key] = per_aggregate
    return found


def test_redis_replay_equals_the_live_model_moves_the_epoch_and_the_live_writer_carries_on(
    kafka: KafkaSettings,
    serde: AvroSerde,
    settings: OmiumSettings,
    redis_projection_factory: Factory,
    runner_factory: Factory,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    running = run_of(tenant, start=now, end=None, steps=[("a", "x", True), ("b", "y", True)])
    ended = run_of(tenant, start=now)
    # Ended long ago: its keys expired from the live model; a rebuild must not bring it back.
    old = run_of(tenant, start=now - timedelta(days=30))
    vote = Chain(tenant, start=now)
    vote.add("ConsensusRoundOpened", execution_id=uuid.UUID(running.aggregate_id))
    vote.add("VoteCast", voter="w", decision="A", weight=1.0)
    events = [*old.events, *running.events, *ended.events, *vote.events]
    publish(kafka, serde, events)
    live: RedisProjection = redis_projection_factory(kafka)
    runner = runner_factory(live, kafka)
    wait_for(
        lambda: (
            runner.run_once() is not None and sum(live.stored_offsets().values()) >= len(events)
        ),
        every_s=0,
        what="live projection",
    )
    client = redis.Redis.from_url(settings.redis.url, decode_responses=True)
    for key in client.scan_iter(match=f"{live.keys.prefix}:*{old.aggregate_id}", count=1000):
        client.delete(key)  # what the day's expiry did to the old run's keys
    before = redis_state(client, live.keys.prefix)
    assert any(old.aggregate_id not in key for key in before)

    report = replay("redis", settings.model_copy(update={"kafka": kafka}), serde)

    assert report.events == len(events)
    assert client.get(live.keys.epoch) == "1"
    after = redis_state(client, live.keys.prefix)
    # The old run is still in the tenant's stream (as it was live) but has no keys of its own.
    assert not [key for key in after if old.aggregate_id in key]
    assert after == before
    assert report.counts == report.live_counts == {k: v for k, v in report.counts.items() if v}
    assert list(client.scan_iter(match=f"{kafka.topic_prefix}:rm~*", count=1000)) == []

    # The live writer meets the rebuild's offsets, re-seeks, and goes on.
    more = run_of(tenant, start=datetime.now(UTC), end=None)
    publish(kafka, serde, more.events)
    wait_for(
        lambda: (
            runner.run_once() is not None
            and client.hget(live.keys.execution(tenant, more.aggregate_id), "status") == "running"
        ),
        every_s=0,
        what="the live writer after the swap",
    )
    stream = stream_fields(client, live.keys.execution_events(tenant, more.aggregate_id))
    assert [f["event_type"] for f in stream] == [e["event_type"] for e in more.events]

    with pytest.raises(ConfigurationError):
        replay("redis", settings.model_copy(update={"kafka": kafka}), serde, keep_old=True)
    client.close()


def test_omium_replay_shows_progress_with_rate_and_eta_then_the_counts(
    kafka: KafkaSettings,
    serde: AvroSerde,
    pg_projection_factory: Factory,
    runner_factory: Factory,
    pg: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = everything(f"t-{uuid.uuid4().hex[:8]}")
    publish(kafka, serde, events)
    live: PostgresProjection = pg_projection_factory(kafka)
    run_until_offsets(runner_factory(live, kafka), live, len(events))
    before = snapshot(pg, live.schema)
    monkeypatch.setenv("OMIUM_KAFKA__TOPIC_PREFIX", kafka.topic_prefix)
    monkeypatch.setenv("OMIUM_KAFKA__PARTITIONS", str(kafka.partitions))

    result = CliRunner().invoke(app, ["replay", "postgres", "--workers", "2"])

    assert result.exit_code == 0, result.output
    assert "replay postgres" in result.output  # the bar: done/total msgs, events/s, lag, eta
    assert f"{len(events)}/{len(events)} msgs" in result.output.replace(",", "")
    assert "events/s" in result.output and "eta 0s" in result.output
    assert f"replayed {len(events)} events" in result.output
    assert snapshot(pg, live.schema) == before
