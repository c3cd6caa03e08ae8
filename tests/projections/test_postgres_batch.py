"""Set-based batches give the same rows as one statement per op; refused rows are sifted out."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer

from omium.kernel.kafka import Area, ConsumedEvent, EventProducer, consumer_config, topic_name
from omium.kernel.serde import AvroSerde
from omium.kernel.settings import KafkaSettings
from omium.projections.base import StoreRejectedError
from omium.projections.postgres import PostgresProjection
from tests.projections.helpers import Chain, run_of, single, wait_for
from tests.projections.test_postgres import count, everything, run_until_offsets
from tests.projections.test_replay import snapshot

pytestmark = pytest.mark.integration

Factory = Callable[..., Any]


def mixed(tenant: str) -> list[dict[str, Any]]:
    """Several runs interleaved event by event, every kind of event, and redeliveries."""
    runs = [
        run_of(tenant, steps=[("a", "agents.a:run", True), ("b", "agents.b:run", i % 2 == 0)])
        for i in range(4)
    ]
    interleaved = [
        run.events[i]
        for i in range(max(len(r.events) for r in runs))
        for run in runs
        if i < len(run.events)
    ]
    rounds = Chain(tenant)
    rounds.add("ConsensusRoundOpened", execution_id=uuid.UUID(runs[0].aggregate_id))
    for voter in ("a", "b", "c"):
        rounds.add("VoteCast", voter=voter, decision="A")
    rounds.add("ConsensusReached", decision="A")
    world = everything(tenant)
    # Redelivered copies right after the originals and at the end (at-least-once relay).
    return [*world[:5], *world[:3], *interleaved, *rounds.events, *world[5:], *interleaved[:9]]


def consumed_of(serde: AvroSerde, events: list[dict[str, Any]]) -> list[ConsumedEvent]:
    out = []
    for offset, event in enumerate(events):
        raw = serde.encode(event)
        out.append(
            ConsumedEvent(
                topic="t", partition=0, offset=offset, key=None, event=serde.decode(raw), raw=raw
            )
        )
    return out


def test_a_set_based_batch_gives_the_rows_of_one_statement_per_op(
    kafka: KafkaSettings,
    serde: AvroSerde,
    settings: Any,
    pg: psycopg.Connection,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    events = consumed_of(serde, mixed(tenant))
    schemas = [f"pb_{uuid.uuid4().hex[:10]}" for _ in range(3)]
    dsn = settings.postgres.dsn()
    one_by_one = PostgresProjection.open(dsn, schema=schemas[0], set_based=False)
    one_batch = PostgresProjection.open(dsn, schema=schemas[1])
    small_batches = PostgresProjection.open(dsn, schema=schemas[2])
    try:
        for consumed in events:  # the reference: one event per flush, one statement per op
            one_by_one.apply(consumed)
            one_by_one.flush(
                {("t", 0): consumed.offset + 1}, expected={("t", 0): consumed.offset or None}
            )
        for consumed in events:
            one_batch.apply(consumed)
        one_batch.flush({("t", 0): len(events)}, expected={("t", 0): None})
        stored: int | None = None
        for start in range(0, len(events), 7):
            for consumed in events[start : start + 7]:
                small_batches.apply(consumed)
            end = min(len(events), start + 7)
            small_batches.flush({("t", 0): end}, expected={("t", 0): stored})
            stored = end

        # Far fewer statements than ops, and the same rows in every table.
        assert one_batch.statements < one_by_one.statements / 2
        reference = snapshot(pg, schemas[0])
        assert sum(len(rows) for rows in reference.values()) > 50
        assert snapshot(pg, schemas[1]) == reference
        assert snapshot(pg, schemas[2]) == reference
        statuses = pg.execute(
            f"SELECT status, count(*) FROM {schemas[1]}.executions WHERE tenant_id = %s "
            "GROUP BY status ORDER BY status",
            (tenant,),
        ).fetchall()
        assert statuses == [("completed", 4), ("failed", 1)]
    finally:
        for projection in (one_by_one, one_batch, small_batches):
            projection.close()
        for schema in schemas:
            pg.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_a_poison_event_goes_to_the_dlq_and_the_rest_of_its_batch_lands(
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
    run = run_of(tenant)
    # PostgreSQL refuses a NUL character in text; the mapper of "boom" policies fails.
    refused = single("CommandRecorded", tenant, actor="nul\x00byte")
    events = [
        single("CommandRecorded", tenant),
        *run.events[:3],
        refused,
        single("PolicyPublished", tenant, policy_id="boom"),
        *run.events[3:],
        single("CommandRecorded", tenant),
    ]
    with EventProducer(kafka, serde) as producer:
        for event in events:
            producer.publish(event)

    original = MAPPERS["PolicyPublished"]

    def broken(event: dict[str, Any]) -> list[Any]:
        if event["payload"]["policy_id"] == "boom":
            raise KeyError("policy_id")
        return original(event)

    monkeypatch.setitem(MAPPERS, "PolicyPublished", broken)
    projection: PostgresProjection = pg_projection_factory(kafka)
    runner = runner_factory(projection, kafka, max_batch=100)
    run_until_offsets(runner, projection, len(events))

    # Every offset is past the batch; the good rows are there, the refused one is not.
    assert sum(projection.stored_offsets().values()) == len(events)
    s = projection.schema
    assert count(pg, s, "audit_log", tenant) == 2
    assert pg.execute(
        f"SELECT status, steps_completed FROM {s}.executions WHERE tenant_id = %s", (tenant,)
    ).fetchone() == ("completed", 1)
    assert count(pg, s, "execution_events", tenant) == len(run.events)

    dlq = Consumer(consumer_config(kafka, f"dlq-{uuid.uuid4()}"))
    dlq.subscribe([topic_name(kafka, Area.DLQ)])
    letters: list[Any] = []

    def two_letters() -> bool:
        letters.extend(m for m in dlq.consume(10, 0.5) if m.error() is None)
        return len(letters) >= 2

    wait_for(two_letters, what="two dead letters")
    dlq.close()
    by_type = {dict(m.headers())["dlq.error_type"].decode(): m for m in letters}
    assert set(by_type) == {"KeyError", StoreRejectedError.__name__}
    store = dict(by_type[StoreRejectedError.__name__].headers())
    assert int(store["dlq.source_offset"]) == 1  # the second audit message
    assert b"PostgreSQL refused" in store["dlq.reason"]
