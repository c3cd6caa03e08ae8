"""The relay against the real stack: stored events end up on Kafka, in order, exactly as mapped.

Every test has its own event store schema and topic prefix (see ``fixtures.py``) and reads Kafka
with a plain confluent-kafka consumer and ``AvroSerde.decode``.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from confluent_kafka import Message
from eventsourcing.persistence import StoredEvent
from psycopg import sql

from commands import CommandApplications
from commands.relay import (
    ALL_MAPPINGS,
    POSITIONS_TABLE,
    OutboxRelay,
    PostgresRelayStore,
    PublishError,
    RelayProgress,
    TransactionalPublisher,
    event_id_for,
)
from omium.kernel.events import verify_chain
from omium.kernel.serde import AvroSerde, default_catalog
from omium.kernel.settings import OmiumSettings
from tests.commands.relay.fixtures import headers_of, key_of, value_of
from tests.commands.relay.scenario import record_every_event

pytestmark = pytest.mark.integration

SERDE = AvroSerde(default_catalog())
DOMAIN_AREAS = ["workflows", "executions", "consensus", "policies"]
Reader = Callable[..., list[Message]]


def decode_all(messages: list[Message]) -> list[dict[str, Any]]:
    """The Avro events of some messages, in the order given."""
    return [SERDE.decode(value_of(m)) for m in messages]


def run_command(apps: CommandApplications) -> UUID:
    """Store one new event (a new execution) and return its aggregate id."""
    result = apps.executions.start_execution("t", workflow_id=uuid4(), workflow_version=1)
    return result.aggregate_id


def drain(relay_factory: Callable[..., OutboxRelay], **options: Any) -> RelayProgress:
    """Run a new relay once (drain every log), then close it so it releases its lock."""
    with relay_factory(**options) as relay:
        return relay.run(once=True)


def wait_for(condition: Callable[[], bool], timeout_s: float) -> float:
    """Poll ``condition`` until true; return the seconds it took (fails after ``timeout_s``)."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, f"not true after {timeout_s}s"
        time.sleep(0.05)
    return time.monotonic() - started


def test_every_command_ends_as_its_avro_event_on_its_topic(
    relay_apps: CommandApplications, relay_factory: Callable[..., OutboxRelay], topic_reader: Reader
) -> None:
    recorded = record_every_event(relay_apps, "acme")

    progress = drain(relay_factory)

    assert progress.relayed == recorded.count and progress.dead_lettered == 0
    assert progress.total_lag == 0
    messages = topic_reader(DOMAIN_AREAS)
    events = decode_all(messages)
    expected_area = {m.event_type: default_catalog().area_of(m.event_type)
                     for m in ALL_MAPPINGS.values()}
    for message, event in zip(messages, events, strict=True):
        assert str(message.topic()).endswith("." + expected_area[event["event_type"]])
        assert key_of(message) == event["aggregate_id"]
        assert event["event_id"] == event_id_for(event["aggregate_id"], event["aggregate_version"])
        assert event["tenant_id"] == "acme"
    per_aggregate: dict[UUID, list[dict[str, Any]]] = {}
    for event in events:
        per_aggregate.setdefault(UUID(event["aggregate_id"]), []).append(event)
    assert {a: [e["event_type"] for e in es] for a, es in per_aggregate.items()} == recorded.events
    for history in per_aggregate.values():
        assert [e["aggregate_version"] for e in history] == list(range(1, len(history) + 1))
        verify_chain(history)


def test_the_envelope_carries_the_stored_timestamp_and_version(
    relay_apps: CommandApplications, relay_factory: Callable[..., OutboxRelay], topic_reader: Reader
) -> None:
    before = datetime.now(UTC)
    run = run_command(relay_apps)
    relay_apps.executions.schedule_step("t", run, step_id="a", agent="agents.a:run")
    stored = relay_apps.executions.get_execution("t", run)

    drain(relay_factory)

    started, scheduled = decode_all(topic_reader(["executions"]))
    assert (started["event_type"], scheduled["event_type"]) == ("ExecutionStarted", "StepScheduled")
    assert scheduled["aggregate_version"] == 2 == stored.version
    assert before <= started["occurred_at"] <= scheduled["occurred_at"] <= datetime.now(UTC)
    assert scheduled["payload"]["agent"] == "agents.a:run"
    assert scheduled["prev_hash"] == started["hash"]


def test_a_second_run_relays_only_new_events_and_continues_the_chains(
    relay_apps: CommandApplications, relay_factory: Callable[..., OutboxRelay], topic_reader: Reader
) -> None:
    run = run_command(relay_apps)
    assert drain(relay_factory).relayed == 1

    relay_apps.executions.schedule_step("t", run, step_id="a")
    other = run_command(relay_apps)
    second = drain(relay_factory)

    assert second.relayed == 2
    events = decode_all(topic_reader(["executions"]))
    assert sorted((e["aggregate_id"], e["aggregate_version"]) for e in events) == sorted(
        [(str(run), 1), (str(run), 2), (str(other), 1)]
    )
    verify_chain(sorted(events, key=lambda e: (e["aggregate_id"], e["aggregate_version"])))


def test_position_and_chain_heads_are_stored_together(
    relay_apps: CommandApplications,
    relay_factory: Callable[..., OutboxRelay],
    relay_settings: OmiumSettings,
    relay_schema: str,
    topic_reader: Reader,
) -> None:
    run = run_command(relay_apps)
    relay_apps.executions.schedule_step("t", run, step_id="a")

    drain(relay_factory)

    store = PostgresRelayStore(relay_settings.postgres.dsn(), schema=relay_schema)
    try:
        last = decode_all(topic_reader(["executions"]))[-1]
        newest = relay_apps.executions.recorder.max_notification_id()
        assert store.positions()["Executions"] == newest
        head = store.chain_heads([str(run)])[str(run)]
        assert (head.aggregate_version, head.hash) == (2, last["hash"])
    finally:
        store.close()


def test_lost_positions_and_heads_resend_identical_events(
    relay_apps: CommandApplications,
    relay_factory: Callable[..., OutboxRelay],
    relay_settings: OmiumSettings,
    relay_schema: str,
    topic_reader: Reader,
) -> None:
    record_every_event(relay_apps, "acme")
    drain(relay_factory)
    first = {value_of(m) for m in topic_reader(DOMAIN_AREAS)}
    store = PostgresRelayStore(relay_settings.postgres.dsn(), schema=relay_schema)
    store.reset()
    store.close()

    drain(relay_factory)

    messages = topic_reader(DOMAIN_AREAS)
    assert len(messages) == 2 * len(first)
    assert {value_of(m) for m in messages} == first


def test_an_event_that_cannot_be_mapped_is_dead_lettered_and_the_relay_moves_on(
    relay_apps: CommandApplications, relay_factory: Callable[..., OutboxRelay], topic_reader: Reader
) -> None:
    bogus = StoredEvent(
        originator_id=uuid4(),
        originator_version=1,
        topic="commands.executions.domain:Execution.NoSuchEvent",
        state=b'{"tenant_id": "t", "weird": true}',
    )
    relay_apps.executions.recorder.insert_events([bogus])
    good = run_command(relay_apps)

    progress = drain(relay_factory)

    assert (progress.relayed, progress.dead_lettered, progress.total_lag) == (1, 1, 0)
    [letter] = topic_reader(["dlq"])
    headers = headers_of(letter)
    assert key_of(letter) == str(bogus.originator_id)
    assert b"cannot decode" in headers["dlq.reason"] and b"NoSuchEvent" in headers["dlq.reason"]
    assert headers["dlq.consumer_group"] == b"omium-relay"
    document = json.loads(value_of(letter))
    assert document["state"] == {"tenant_id": "t", "weird": True}
    assert document["topic"] == bogus.topic
    [event] = decode_all(topic_reader(["executions"]))
    assert event["aggregate_id"] == str(good)


def test_a_notify_wakes_the_relay_long_before_its_poll_interval(
    relay_apps: CommandApplications, relay_factory: Callable[..., OutboxRelay]
) -> None:
    run_command(relay_apps)
    relay = relay_factory(poll_interval_s=60.0)
    runner = threading.Thread(target=relay.run, daemon=True)
    runner.start()
    wait_for(lambda: relay.progress.relayed == 1, 10)  # drained at start: now on LISTEN
    time.sleep(0.3)

    run_command(relay_apps)

    took = wait_for(lambda: relay.progress.relayed == 2, 10)
    relay.stop()
    runner.join(timeout=70)
    assert took < 5, f"woken after {took:.1f}s"
    assert not runner.is_alive()


def test_without_notifications_polling_still_relays(
    relay_apps: CommandApplications, relay_factory: Callable[..., OutboxRelay]
) -> None:
    relay = relay_factory(poll_interval_s=0.2, listen=False)
    runner = threading.Thread(target=relay.run, daemon=True)
    runner.start()
    time.sleep(0.5)

    run_command(relay_apps)

    wait_for(lambda: relay.progress.relayed == 1, 10)
    relay.stop()
    runner.join(timeout=10)
    assert not runner.is_alive()


def test_a_second_relay_stands_by_until_the_first_stops(
    relay_apps: CommandApplications, relay_factory: Callable[..., OutboxRelay], topic_reader: Reader
) -> None:
    first, second = relay_factory(poll_interval_s=0.2), relay_factory(poll_interval_s=0.2)
    run_command(relay_apps)
    leader = threading.Thread(target=first.run, daemon=True)
    leader.start()
    wait_for(lambda: first.progress.relayed == 1, 10)
    standby = threading.Thread(target=second.run, daemon=True)
    standby.start()

    time.sleep(1.0)
    assert second.progress.batches == 0
    first.stop()
    leader.join(timeout=10)
    run_command(relay_apps)

    wait_for(lambda: second.progress.relayed == 1, 15)  # only the new one: position was stored
    second.stop()
    standby.join(timeout=10)
    assert len(topic_reader(["executions"])) == 2


def test_omium_relay_stops_cleanly_on_sigterm(
    relay_apps: CommandApplications,
    relay_process_factory: Callable[..., Any],
    relay_settings: OmiumSettings,
    relay_schema: str,
    topic_reader: Reader,
) -> None:
    run_command(relay_apps)
    process = relay_process_factory("--poll-interval", "0.2")
    wait_for(lambda: _position(relay_settings, relay_schema, "Executions") >= 1, 30)

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=15) == 0
    assert len(topic_reader(["executions"])) == 1


def _position(settings: OmiumSettings, schema: str, application: str) -> int:
    """The relay's stored position in one log (0 before its tables or row exist)."""
    try:
        with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
            row = conn.execute(
                sql.SQL("SELECT notification_id FROM {} WHERE application = %s").format(
                    sql.Identifier(schema, POSITIONS_TABLE)
                ),
                (application,),
            ).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return 0 if row is None else int(row[0])



def test_a_batch_kafka_refused_is_sent_again_and_nothing_is_skipped(
    relay_apps: CommandApplications,
    relay_factory: Callable[..., OutboxRelay],
    topic_reader: Reader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs = [run_command(relay_apps) for _ in range(3)]
    real_publish = TransactionalPublisher.publish
    calls: list[int] = []

    def refuse_first(self: TransactionalPublisher, messages: Any) -> None:
        calls.append(len(messages))
        if len(calls) == 1:
            raise PublishError("broker unavailable (simulated)", fatal=False)
        real_publish(self, messages)

    monkeypatch.setattr(TransactionalPublisher, "publish", refuse_first)
    relay = relay_factory(poll_interval_s=0.1)
    runner = threading.Thread(target=relay.run, daemon=True)
    runner.start()

    wait_for(lambda: relay.progress.relayed == 3, 10)
    relay.stop()
    runner.join(timeout=10)
    assert calls[:2] == [3, 3]
    assert sorted(e["aggregate_id"] for e in decode_all(topic_reader(["executions"]))) == sorted(
        str(r) for r in runs
    )


def test_a_fatal_kafka_error_stops_the_relay(
    relay_apps: CommandApplications,
    relay_factory: Callable[..., OutboxRelay],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_command(relay_apps)

    def fenced(self: TransactionalPublisher, messages: Any) -> None:
        raise PublishError("fenced (simulated)", fatal=True)

    monkeypatch.setattr(TransactionalPublisher, "publish", fenced)
    relay = relay_factory(poll_interval_s=0.1)

    with pytest.raises(PublishError) as caught:
        relay.run()

    assert caught.value.fatal and relay.progress.relayed == 0
