"""Replays rebuild a read model equal to the live one and swap it in under a live writer."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from omium.kernel.serde import AvroSerde
from omium.kernel.settings import KafkaSettings, OmiumSettings
from projections import replay
from projections.opensearch import READ_MODELS, OpenSearchProjection
from projections.postgres import PostgresProjection
from tests.projections.helpers import publish, single, wait_for
from tests.projections.test_postgres import everything, run_until_offsets

pytestmark = pytest.mark.integration

Factory = Callable[..., Any]


def snapshot(pg: psycopg.Connection, schema: str) -> dict[str, set[tuple[Any, ...]]]:
    """Every row of every read-model table (offsets and migrations left out)."""
    tables = [r[0] for r in pg.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
        "AND table_name NOT IN ('projection_offsets', 'schema_migrations')", (schema,))]
    return {t: {tuple(str(v) for v in row)
                for row in pg.execute(f"SELECT * FROM {schema}.{t}").fetchall()}
            for t in tables}


def test_postgres_replay_equals_the_live_model_and_the_live_writer_carries_on(
    kafka: KafkaSettings, serde: AvroSerde, settings: OmiumSettings,
    pg_projection_factory: Factory, runner_factory: Factory, pg: psycopg.Connection,
) -> None:
    tenants = [f"t-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    events = [e for tenant in tenants for e in everything(tenant)]
    publish(kafka, serde, events)
    live: PostgresProjection = pg_projection_factory(kafka)
    runner = runner_factory(live, kafka)
    run_until_offsets(runner, live, len(events))
    before = snapshot(pg, live.schema)

    env = settings.model_copy(update={"kafka": kafka})
    seen: list[int] = []
    report = replay("postgres", env, serde, on_progress=lambda p: seen.append(p.lag))

    assert report.events == len(events)
    assert seen and seen[-1] == 0
    assert report.counts == report.live_counts
    assert snapshot(pg, live.schema) == before  # the swapped-in copy has exactly the same rows
    leftovers = pg.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                           (f"{live.schema}__%",)).fetchall()
    assert leftovers == []

    # The live writer's next batch meets the replay's offsets, re-seeks, and goes on.
    extra = [single("CommandRecorded", tenants[0]) for _ in range(3)]
    publish(kafka, serde, extra)
    run_until_offsets(runner, live, len(events) + len(extra))
    audit = pg.execute(f"SELECT count(*) FROM {live.schema}.audit_log WHERE tenant_id = %s",
                       (tenants[0],)).fetchone()
    assert audit == (1 + len(extra),)


def documents(projection: OpenSearchProjection, prefix: str) -> dict[str, dict[str, Any]]:
    found = {}
    for model in READ_MODELS:
        target = f"{prefix}-{model}"
        projection.client.refresh(target)
        hits = projection.client.request("POST", f"/{target}/_search",
                                         body={"size": 1000})["hits"]["hits"]
        found.update({f"{model}/{h['_id']}": h["_source"] for h in hits})
    return found


def test_opensearch_replay_equals_the_live_model(
    kafka: KafkaSettings, serde: AvroSerde, settings: OmiumSettings,
    opensearch_projection_factory: Factory, runner_factory: Factory,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    failure_id = uuid.uuid4()
    events = [*(single("SpanRecorded", tenant, span_id=f"{i:016x}") for i in range(20)),
              single("FailureDetected", tenant, failure_id=failure_id),
              single("RecoveryPlanned", tenant, failure_id=failure_id),
              *(single("CommandRecorded", tenant) for _ in range(5))]
    publish(kafka, serde, events)
    live: OpenSearchProjection = opensearch_projection_factory(kafka)
    runner = runner_factory(live, kafka)
    wait_for(lambda: runner.run_once() is not None and runner.events_total >= len(events),
             every_s=0, what="live projection")
    before = documents(live, kafka.topic_prefix)
    old_indices = {m: live.client.alias_targets(f"{kafka.topic_prefix}-{m}") for m in READ_MODELS}

    report = replay("opensearch", settings.model_copy(update={"kafka": kafka}), serde)

    assert report.counts == {"spans": 20, "failures": 1, "audit": 5}
    assert documents(live, kafka.topic_prefix) == before
    for model, indices in old_indices.items():
        now = live.client.alias_targets(f"{kafka.topic_prefix}-{model}")
        assert now != indices and len(now) == 1
