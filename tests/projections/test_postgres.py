"""The PostgreSQL projection against real Kafka and PostgreSQL: events in, rows out."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from confluent_kafka import Producer

from omium.kernel.errors import PersistenceError
from omium.kernel.kafka import Area, EventProducer, producer_config, topic_name
from omium.kernel.serde import AvroSerde
from omium.kernel.settings import KafkaSettings
from omium.projections.base import ProjectionRunner
from omium.projections.postgres import PostgresProjection
from tests.projections.helpers import T0, Chain, publish, run_of, single, wait_for

pytestmark = pytest.mark.integration

Factory = Callable[..., Any]


def run_until_offsets(
    runner: ProjectionRunner, projection: PostgresProjection, total: int, *, timeout_s: float = 30.0
) -> None:
    """Run the loop until the stored offsets add up to ``total`` messages consumed."""

    def done() -> bool:
        runner.run_once()
        return sum(projection.stored_offsets().values()) >= total

    wait_for(done, timeout_s=timeout_s, every_s=0, what=f"{total} messages projected")


def count(pg: psycopg.Connection, schema: str, table: str, tenant: str) -> int:
    row = pg.execute(
        f"SELECT count(*) FROM {schema}.{table} WHERE tenant_id = %s", (tenant,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def everything(tenant: str) -> list[dict[str, Any]]:
    """One of every kind of event the read model keeps, as a consistent little world."""
    workflow = Chain(tenant)
    workflow.add("WorkflowRegistered", name="report")
    workflow.add("WorkflowVersionPublished", version=1)
    run = run_of(
        tenant,
        workflow_id=uuid.UUID(workflow.aggregate_id),
        steps=[("research", "agents.r:run", True), ("draft", "agents.w:run", False)],
        end=None,
    )
    checkpoint_id = str(uuid.uuid4())
    run.add("CheckpointCreated", checkpoint_id=checkpoint_id, step_id="research")
    run.add(
        "ExecutionRolledBack",
        checkpoint_id=checkpoint_id,
        resume_step_id="draft",
        discarded_step_ids=["draft"],
    )
    run.add("ExecutionFailed")
    execution = uuid.UUID(run.aggregate_id)
    failure_id, plan_id = uuid.uuid4(), uuid.uuid4()
    failures = [
        single("FailureDetected", tenant, failure_id=failure_id, execution_id=execution),
        single(
            "RecoveryPlanned",
            tenant,
            plan_id=plan_id,
            failure_id=failure_id,
            execution_id=execution,
        ),
    ]
    rounds = Chain(tenant)
    rounds.add("ConsensusRoundOpened", execution_id=execution)
    rounds.add("VoteCast", voter="writer", decision="A")
    rounds.add("VoteRejected", voter="writer", decision="B")
    rounds.add("ConsensusReached", decision="A")
    policy = Chain(tenant)
    policy.add("PolicyPublished", policy_id="budget", version=1)
    violation = single("PolicyViolated", tenant, policy_id="budget", execution_id=execution)
    audit = single("CommandRecorded", tenant, command="executions.start")
    return [
        *workflow.events,
        *run.events,
        *failures,
        *rounds.events,
        *policy.events,
        violation,
        audit,
    ]


def test_every_kind_of_event_lands_in_its_table(
    kafka: KafkaSettings,
    serde: AvroSerde,
    pg_projection_factory: Factory,
    runner_factory: Factory,
    pg: psycopg.Connection,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    events = everything(tenant)
    publish(kafka, serde, events)
    projection = pg_projection_factory(kafka)
    run_until_offsets(runner_factory(projection, kafka), projection, len(events))

    s = projection.schema
    expected = {
        "workflows": 1,
        "workflow_versions": 1,
        "executions": 1,
        "steps": 2,
        "checkpoints": 1,
        "failures": 1,
        "recovery_plans": 1,
        "consensus_rounds": 1,
        "consensus_votes": 2,
        "policies": 1,
        "policy_versions": 1,
        "policy_violations": 1,
        "audit_log": 1,
    }
    assert {t: count(pg, s, t, tenant) for t in expected} == expected
    execution = pg.execute(
        f"SELECT status, steps_completed, steps_failed, total_tokens, agents, current_step_id "
        f"FROM {s}.executions WHERE tenant_id = %s",
        (tenant,),
    ).fetchone()
    assert execution == ("failed", 1, 1, 150, ["agents.r:run", "agents.w:run"], "draft")
    steps: dict[str, str] = dict(
        pg.execute(
            f"SELECT step_id, status FROM {s}.steps WHERE tenant_id = %s", (tenant,)
        ).fetchall()
    )
    assert steps == {"research": "completed", "draft": "discarded"}
    round_ = pg.execute(
        f"SELECT status, decision, votes_cast, votes_rejected "
        f"FROM {s}.consensus_rounds WHERE tenant_id = %s",
        (tenant,),
    ).fetchone()
    assert round_ == ("reached", "A", 1, 1)
    # The timeline has the run's own events plus failures, recovery, consensus and policy ones.
    timeline = [
        r[0]
        for r in pg.execute(
            f"SELECT event_type FROM {s}.execution_events WHERE tenant_id = %s "
            "ORDER BY occurred_at, aggregate_version",
            (tenant,),
        ).fetchall()
    ]
    assert len(timeline) == 10 + 2 + 4 + 1
    assert {
        "FailureDetected",
        "RecoveryPlanned",
        "VoteCast",
        "ConsensusReached",
        "PolicyViolated",
    } <= set(timeline)


def test_redelivered_events_change_nothing(
    kafka: KafkaSettings,
    serde: AvroSerde,
    pg_projection_factory: Factory,
    runner_factory: Factory,
    pg: psycopg.Connection,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    events = everything(tenant)
    # The relay is at-least-once: every event arrives twice, at different offsets.
    publish(kafka, serde, events + events)
    projection = pg_projection_factory(kafka)
    runner = runner_factory(projection, kafka)
    run_until_offsets(runner, projection, 2 * len(events))
    runner.source.close()
    s = projection.schema
    tables = [
        "executions",
        "steps",
        "consensus_votes",
        "policy_violations",
        "audit_log",
        "execution_events",
        "failures",
    ]
    before = {t: count(pg, s, t, tenant) for t in tables}
    totals = pg.execute(
        f"SELECT steps_completed, total_tokens, total_cost_usd FROM "
        f"{s}.executions WHERE tenant_id = %s",
        (tenant,),
    ).fetchone()
    assert totals == (1, 150, pytest.approx(0.01))
    assert pg.execute(
        f"SELECT votes_cast FROM {s}.consensus_rounds WHERE tenant_id = %s", (tenant,)
    ).fetchone() == (1,)

    # Forget every stored offset: the whole topic is applied again, and nothing changes.
    pg.execute(f"DELETE FROM {s}.projection_offsets")
    again = pg_projection_factory(kafka)
    run_until_offsets(runner_factory(again, kafka), again, 2 * len(events))
    assert {t: count(pg, s, t, tenant) for t in tables} == before
    assert pg.execute(
        f"SELECT steps_completed, total_tokens FROM {s}.executions WHERE tenant_id = %s", (tenant,)
    ).fetchone() == (1, 150)


def test_restart_resumes_from_the_stored_offsets_not_the_group(
    kafka: KafkaSettings,
    serde: AvroSerde,
    pg_projection_factory: Factory,
    runner_factory: Factory,
    pg: psycopg.Connection,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    first = [single("CommandRecorded", tenant) for _ in range(5)]
    publish(kafka, serde, first)
    projection = pg_projection_factory(kafka)
    runner = runner_factory(projection, kafka)
    run_until_offsets(runner, projection, 5)
    runner.source.close()

    second = [single("CommandRecorded", tenant) for _ in range(3)]
    publish(kafka, serde, second)
    restarted = pg_projection_factory(kafka)
    again = runner_factory(restarted, kafka)
    run_until_offsets(again, restarted, 8)
    # Only the three new events were read: the source started at the stored offsets.
    assert again.events_total == 3
    assert count(pg, projection.schema, "audit_log", tenant) == 8


def test_undecodable_and_unprojectable_messages_go_to_the_dlq(
    kafka_factory: Factory,
    serde: AvroSerde,
    pg_projection_factory: Factory,
    runner_factory: Factory,
    pg: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from omium.projections.postgres import MAPPERS

    kafka = kafka_factory(partitions=1)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    audit_topic = topic_name(kafka, Area.AUDIT)
    with EventProducer(kafka, serde) as producer:
        producer.publish(single("CommandRecorded", tenant))
        producer.send(audit_topic, key="garbage", value=os.urandom(40))
        producer.publish(single("PolicyPublished", tenant, policy_id="boom"))
        producer.publish(single("CommandRecorded", tenant))

    def broken(event: dict[str, Any]) -> list[Any]:
        raise KeyError("policy_id")

    monkeypatch.setitem(MAPPERS, "PolicyPublished", broken)
    projection = pg_projection_factory(kafka)
    run_until_offsets(runner_factory(projection, kafka), projection, 4)
    assert count(pg, projection.schema, "audit_log", tenant) == 2

    from confluent_kafka import Consumer

    from omium.kernel.kafka import consumer_config

    dlq = Consumer(consumer_config(kafka, f"dlq-{uuid.uuid4()}"))
    dlq.subscribe([topic_name(kafka, Area.DLQ)])
    letters: list[Any] = []

    def two_letters() -> bool:
        letters.extend(m for m in dlq.consume(10, 0.5) if m.error() is None)
        return len(letters) >= 2

    wait_for(two_letters, what="two dead letters")
    dlq.close()
    reasons = {dict(m.headers())["dlq.error_type"].decode() for m in letters}
    assert len(letters) == 2
    assert "KeyError" in reasons  # the other one could not even be decoded


def test_a_flush_over_moved_offsets_is_refused_and_the_source_rewinds(
    kafka_factory: Factory,
    serde: AvroSerde,
    pg_projection_factory: Factory,
    runner_factory: Factory,
    pg: psycopg.Connection,
) -> None:
    kafka = kafka_factory(partitions=1)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    publish(
        kafka,
        serde,
        [single("CommandRecorded", tenant, at=T0 + timedelta(seconds=i)) for i in range(4)],
    )
    projection = pg_projection_factory(kafka)
    runner = runner_factory(projection, kafka)
    run_until_offsets(runner, projection, 4)

    # Someone else (a replay's swap) moved the offsets back to 2 and removed two rows.
    s, topic = projection.schema, topic_name(kafka, Area.AUDIT)
    pg.execute(f"UPDATE {s}.projection_offsets SET next_offset = 2 WHERE topic = %s", (topic,))
    pg.execute(
        f"DELETE FROM {s}.audit_log WHERE event_id IN (SELECT event_id FROM "
        f"{s}.audit_log WHERE tenant_id = %s ORDER BY occurred_at DESC LIMIT 2)",
        (tenant,),
    )
    publish(kafka, serde, [single("CommandRecorded", tenant)])
    wait_for(lambda: runner.run_once().rewound, what="a refused flush")
    run_until_offsets(runner, projection, 5)
    assert count(pg, s, "audit_log", tenant) == 5


def test_lag_counts_what_the_store_has_not_applied(
    kafka: KafkaSettings,
    serde: AvroSerde,
    settings: Any,
    pg_projection_factory: Factory,
    runner_factory: Factory,
) -> None:
    from omium.projections import projection_lag

    tenant = f"t-{uuid.uuid4().hex[:8]}"
    publish(kafka, serde, [single("CommandRecorded", tenant) for _ in range(6)])
    env = settings.model_copy(update={"kafka": kafka})
    projection = pg_projection_factory(kafka)
    assert sum(row.lag for row in projection_lag("postgres", env)) == 6
    run_until_offsets(runner_factory(projection, kafka), projection, 6)
    assert sum(row.lag for row in projection_lag("postgres", env)) == 0


def test_a_connection_postgresql_closed_is_replaced_and_projection_goes_on(
    kafka: KafkaSettings,
    serde: AvroSerde,
    pg_projection_factory: Factory,
    runner_factory: Factory,
    pg: psycopg.Connection,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    publish(kafka, serde, [single("CommandRecorded", tenant) for _ in range(5)])
    projection = pg_projection_factory(kafka)
    runner = runner_factory(projection, kafka)
    run_until_offsets(runner, projection, 5)

    # What a PostgreSQL restart does to the projection's session.
    backend = projection.connection.info.backend_pid
    pg.execute("SELECT pg_terminate_backend(%s)", (backend,))
    publish(kafka, serde, [single("CommandRecorded", tenant) for _ in range(3)])

    stop_after = lambda r: sum(projection.stored_offsets().values()) >= 8  # noqa: E731
    runner.run(until=stop_after)  # retries store outages, like the process does
    assert projection.reconnects == 1
    assert projection.connection.info.backend_pid != backend
    assert count(pg, projection.schema, "audit_log", tenant) == 8


def test_a_batch_abandoned_while_postgresql_is_down_is_read_again_not_skipped(
    kafka: KafkaSettings,
    serde: AvroSerde,
    pg_projection_factory: Factory,
    runner_factory: Factory,
    pg: psycopg.Connection,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    publish(kafka, serde, [single("CommandRecorded", tenant) for _ in range(5)])
    projection = pg_projection_factory(kafka)
    runner = runner_factory(projection, kafka)
    run_until_offsets(runner, projection, 5)

    # PostgreSQL goes away: the session is gone and no new one can be opened, so a failed batch
    # cannot be rewound to the stored offsets either.
    dsn = projection._dsn
    projection._dsn = psycopg.conninfo.make_conninfo(dsn, port=1)
    pg.execute("SELECT pg_terminate_backend(%s)", (projection.connection.info.backend_pid,))
    for _ in range(2):
        publish(kafka, serde, [single("CommandRecorded", tenant) for _ in range(3)])
        with pytest.raises(PersistenceError):
            wait_for(lambda: runner.run_once().polled > 0, timeout_s=30, every_s=0, what="a batch")

    projection._dsn = dsn  # back: the abandoned batches are read again before anything else
    run_until_offsets(runner, projection, 11)
    assert count(pg, projection.schema, "audit_log", tenant) == 11


def test_lag_is_zero_once_applied_though_a_commit_marker_ends_the_partition(
    kafka_factory: Callable[..., KafkaSettings],
    serde: AvroSerde,
    settings: Any,
    pg_projection_factory: Factory,
    runner_factory: Factory,
) -> None:
    from omium.projections import projection_lag

    kafka = kafka_factory(partitions=1)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    events = [single("CommandRecorded", tenant) for _ in range(3)]
    producer = Producer(
        {**producer_config(kafka), "transactional.id": f"lag-test-{uuid.uuid4().hex[:8]}"}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    for event in events:
        producer.produce(
            topic_name(kafka, Area.AUDIT),
            key=str(event["aggregate_id"]).encode(),
            value=serde.encode(event),
            headers=[("event_id", str(event["event_id"]).encode())],
        )
    producer.commit_transaction(30)  # offsets 0-2 the records, 3 the commit marker
    env = settings.model_copy(update={"kafka": kafka})
    projection = pg_projection_factory(kafka)
    [row] = [r for r in projection_lag("postgres", env) if r.topic.endswith(".audit")]
    assert (row.end, row.lag) == (4, 3)  # the marker is not counted
    run_until_offsets(runner_factory(projection, kafka), projection, 3)
    assert sum(row.lag for row in projection_lag("postgres", env)) == 0
