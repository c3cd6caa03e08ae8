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
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql

from omium.commands import CommandApplications, writers_lock_statement
from omium.commands.relay import (
    ALL_MAPPINGS,
    POSITIONS_TABLE,
    OutboxRelay,
    PostgresRelayStore,
    PublishError,
    RelayProgress,
    RelayStoreError,
    TransactionalPublisher,
    event_id_for,
)
from omium.commands.relay._wakeup import LOCK_NAMESPACE
from omium.kernel.events import verify_chain
from omium.kernel.serde import AvroSerde, default_catalog
from omium.kernel.settings import OmiumSettings
from tests.commands.relay.fixtures import headers_of, key_of, value_of
from tests.commands.relay.scenario import record_every_event, store_burst

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
    expected_area = {
        m.event_type: default_catalog().area_of(m.event_type) for m in ALL_MAPPINGS.values()
    }
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
        assert store.positions()["Executions"].notification_id == newest
        head = store.chain_heads([str(run)])[str(run)]
        assert (head.aggregate_version, head.hash) == (2, last["hash"])
    finally:
        store.close()


def test_positions_lost_in_postgres_are_recovered_from_kafka_and_nothing_is_resent(
    relay_apps: CommandApplications,
    relay_factory: Callable[..., OutboxRelay],
    relay_settings: OmiumSettings,
    relay_schema: str,
    topic_reader: Reader,
) -> None:
    """The crash between the Kafka commit and the PostgreSQL write, taken to the extreme: the
    relay's PostgreSQL positions and heads are gone. Each batch's Kafka transaction recorded
    them, so the next relay stores them again and sends nothing twice; later events continue
    the hash chains from the recovered heads."""
    record_every_event(relay_apps, "acme")
    drain(relay_factory)
    first = sorted(value_of(m) for m in topic_reader(DOMAIN_AREAS))
    store = PostgresRelayStore(relay_settings.postgres.dsn(), schema=relay_schema)
    store.reset()
    store.close()

    progress = drain(relay_factory)
    run = run_command(relay_apps)
    relay_apps.executions.schedule_step("t", run, step_id="a")
    drain(relay_factory)

    assert progress.relayed == 0
    messages = topic_reader(DOMAIN_AREAS)
    assert len(messages) == len(first) + 2
    assert sorted(value_of(m) for m in messages if value_of(m) in set(first)) == first
    history = [e for e in decode_all(messages) if e["aggregate_id"] == str(run)]
    assert [e["aggregate_version"] for e in history] == [1, 2]
    verify_chain(history)


def test_an_event_that_cannot_be_mapped_is_dead_lettered_and_the_relay_moves_on(
    relay_apps: CommandApplications, relay_factory: Callable[..., OutboxRelay], topic_reader: Reader
) -> None:
    bogus = StoredEvent(
        originator_id=uuid4(),
        originator_version=1,
        topic="omium.commands.executions.domain:Execution.NoSuchEvent",
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
    assert calls[:2] == [4, 4]  # the three events and the batch's position record, twice
    assert sorted(e["aggregate_id"] for e in decode_all(topic_reader(["executions"]))) == sorted(
        str(r) for r in runs
    )


def _terminate_lock_session(settings: OmiumSettings, schema: str) -> int:
    """End the PostgreSQL session holding a schema's relay lock (as a network cut would).

    Returns:
        How many sessions were terminated.
    """
    key = f"{LOCK_NAMESPACE}:{schema}"
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l, "
            "(SELECT hashtextextended(%s, 0) AS k) lock "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid::bigint = (lock.k >> 32) & 4294967295 "
            "AND l.objid::bigint = lock.k & 4294967295",
            (key,),
        ).fetchall()
    return sum(1 for (terminated,) in rows if terminated)


def _offsets(messages: list[Message]) -> set[tuple[str | None, int | None, int | None]]:
    return {(m.topic(), m.partition(), m.offset()) for m in messages}


def test_a_zombie_relay_fenced_by_its_successor_stops_and_its_open_batch_stays_invisible(
    relay_apps: CommandApplications,
    relay_factory: Callable[..., OutboxRelay],
    relay_settings: OmiumSettings,
    relay_schema: str,
    topic_reader: Reader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real zombie: relay A loses its lock session (terminated in PostgreSQL) in the middle of
    a batch whose messages are already on the broker, in its open transaction. Relay B (same
    schema, so the same transactional id) takes the lock; its ``init_transactions`` fences A and
    aborts A's transaction. When A then tries to commit, Kafka refuses it as fenced: A's ``run``
    raises a fatal ``PublishError`` (the process exits), nothing A had sent in that transaction
    ever reaches a read_committed reader, and B relays every event exactly once.

    The only hook holds A between sending its second batch and committing it, so the fencing
    happens at that moment on every run; the producers, the broker and the lock are real.
    """
    expected = store_burst(relay_apps, "zombie", aggregates=20, steps=3)  # 200 events
    in_transaction, release = threading.Event(), threading.Event()
    commits = iter(range(1, 1_000_000))
    real_commit = TransactionalPublisher._commit

    def hold_second_commit(self: TransactionalPublisher, context: str) -> None:
        if next(commits) == 2:
            self._producer.flush(10)  # the open batch is on the broker, uncommitted
            in_transaction.set()
            release.wait(60)
        real_commit(self, context)

    monkeypatch.setattr(TransactionalPublisher, "_commit", hold_second_commit)
    zombie = relay_factory(batch_size=50, poll_interval_s=0.1)
    failures: list[BaseException] = []

    def run_zombie() -> None:
        try:
            zombie.run()
        except BaseException as exc:  # checked below
            failures.append(exc)

    runner = threading.Thread(target=run_zombie, daemon=True)
    runner.start()
    assert in_transaction.wait(30), "relay A never reached its second commit"
    uncommitted = _offsets(topic_reader(["executions"], committed_only=False))
    open_batch = uncommitted - _offsets(topic_reader(["executions"]))
    assert len(open_batch) == 50  # the held batch is on the broker; read_committed skips it

    assert _terminate_lock_session(relay_settings, relay_schema) == 1
    successor = relay_factory(batch_size=50, poll_interval_s=0.1)
    leader = threading.Thread(target=successor.run, daemon=True)
    leader.start()
    wait_for(lambda: successor.progress.relayed == 150, 60)  # A's held batch and the rest
    release.set()
    runner.join(timeout=60)
    successor.stop()
    leader.join(timeout=30)

    assert not runner.is_alive()
    [failure] = failures
    assert isinstance(failure, PublishError) and failure.fatal, failure
    assert zombie.progress.relayed == 50  # only its first batch
    committed = topic_reader(["executions"])
    assert _offsets(committed).isdisjoint(open_batch)
    ids = [e["event_id"] for e in decode_all(committed)]
    assert sorted(ids) == sorted(
        event_id_for(a, v) for a, n in expected.items() for v in range(1, n + 1)
    )
    assert not leader.is_alive()


def test_a_transaction_that_commits_late_is_relayed_not_skipped(
    relay_apps: CommandApplications,
    relay_settings: OmiumSettings,
    relay_schema: str,
    relay_factory: Callable[..., OutboxRelay],
    topic_reader: Reader,
) -> None:
    """Ids are issued at insert, commits happen later: without a table lock, a reader by id
    would pass over a slow transaction's events and never see them. The relay reads in commit
    order (transaction ids below the oldest running one), so the slow events are only held back,
    then relayed in version order with a valid chain.
    """
    first = run_command(relay_apps)
    relay_apps.executions.schedule_step("t", first, step_id="a")
    relay_apps.executions.start_step("t", first, step_id="a")
    recorder = relay_apps.executions.recorder
    assert isinstance(recorder, PostgresApplicationRecorder)
    table = sql.Identifier(relay_schema, recorder.events_table_name)
    slow_run = uuid4()
    slow = psycopg.connect(relay_settings.postgres.dsn())
    try:
        # Copies of `first`'s three events for another run: a valid history, in an open
        # transaction that takes its notification ids now and commits last. Like every
        # event-store writer, it holds the writers' lock from before its first write.
        slow.execute(writers_lock_statement(relay_schema))
        slow.execute(
            sql.SQL(
                "INSERT INTO {t} (originator_id, originator_version, topic, state) "
                "SELECT %s, originator_version, topic, state FROM {t} WHERE originator_id = %s "
                "ORDER BY originator_version"
            ).format(t=table),
            (slow_run, first),
        )
        later = run_command(relay_apps)
        relay_apps.executions.schedule_step("t", later, step_id="a")
        with relay_factory() as relay:  # tables exist: its start runs no DDL to wait on
            relay.run(once=True)
        held_back = {e["aggregate_id"] for e in decode_all(topic_reader(["executions"]))}
        assert held_back == {str(first)}  # `later` waits behind the open transaction
        slow.commit()
    finally:
        slow.close()

    drain(relay_factory)

    events = decode_all(topic_reader(["executions"]))
    assert len({e["event_id"] for e in events}) == len(events) == 8
    for run, versions in ((first, 3), (slow_run, 3), (later, 2)):
        history = [e for e in events if e["aggregate_id"] == str(run)]  # in partition order
        assert [e["aggregate_version"] for e in history] == list(range(1, versions + 1))
        verify_chain(history)


def test_open_transactions_that_write_no_events_do_not_hold_the_relay_back(
    relay_apps: CommandApplications,
    relay_settings: OmiumSettings,
    relay_factory: Callable[..., OutboxRelay],
    topic_reader: Reader,
) -> None:
    """An operator's session left open after a write, in this database or another one of the
    cluster, has a transaction id older than every later event: the relay's horizon counts only
    event-store writers, so the later events go out at once.
    """
    dsn = relay_settings.postgres.dsn()
    here = psycopg.connect(dsn)
    elsewhere = psycopg.connect(dsn, dbname="postgres")
    try:
        for session in (here, elsewhere):
            session.execute("CREATE TEMP TABLE scratch (n int)")
            session.execute("INSERT INTO scratch VALUES (1)")  # now holds a transaction id
        runs = [run_command(relay_apps) for _ in range(3)]
        with relay_factory() as relay:
            relay.run(once=True)
        relayed = {e["aggregate_id"] for e in decode_all(topic_reader(["executions"]))}
        assert relayed == {str(run) for run in runs}
    finally:
        here.close()
        elsewhere.close()


def test_a_crash_after_the_kafka_commit_before_the_position_write_sends_nothing_twice(
    relay_apps: CommandApplications,
    relay_factory: Callable[..., OutboxRelay],
    topic_reader: Reader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs = [run_command(relay_apps) for _ in range(3)]

    def die(self: PostgresRelayStore, positions: Any, heads: Any) -> None:
        raise RelayStoreError("killed before the position write (simulated)")

    with monkeypatch.context() as patch:
        patch.setattr(PostgresRelayStore, "commit", die)
        with pytest.raises(RelayStoreError):
            drain(relay_factory)
    assert len(topic_reader(["executions"])) == 3  # the batch is committed on Kafka

    more = run_command(relay_apps)
    progress = drain(relay_factory)

    assert progress.relayed == 1
    ids = [e["aggregate_id"] for e in decode_all(topic_reader(["executions"]))]
    assert sorted(ids) == sorted(str(r) for r in [*runs, more])


def test_a_position_write_that_fails_after_the_kafka_commit_is_not_followed_by_a_resend(
    relay_apps: CommandApplications,
    relay_factory: Callable[..., OutboxRelay],
    relay_settings: OmiumSettings,
    relay_schema: str,
    topic_reader: Reader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same relay process carries on: it takes its positions from Kafka's record, not again."""
    runs = [run_command(relay_apps) for _ in range(3)]
    real_commit = PostgresRelayStore.commit
    failed: list[int] = []

    def fail_first(self: PostgresRelayStore, positions: Any, heads: Any) -> None:
        if not failed:
            failed.append(len(positions))
            raise RelayStoreError("PostgreSQL went away after the Kafka commit (simulated)")
        real_commit(self, positions, heads)

    monkeypatch.setattr(PostgresRelayStore, "commit", fail_first)
    relay = relay_factory(poll_interval_s=0.1)
    runner = threading.Thread(target=relay.run, daemon=True)
    runner.start()
    try:
        # The failed batch's positions reach PostgreSQL from its record on Kafka.
        wait_for(
            lambda: bool(failed) and _position(relay_settings, relay_schema, "Executions") > 0, 20
        )
        more = run_command(relay_apps)
        wait_for(lambda: relay.progress.relayed >= 1, 20)
    finally:
        relay.stop()
        runner.join(timeout=10)

    ids = [e["aggregate_id"] for e in decode_all(topic_reader(["executions"]))]
    assert sorted(ids) == sorted(str(r) for r in [*runs, more])  # each exactly once
    assert relay.progress.relayed == 1  # the first batch was recorded, not counted or resent


def test_batches_end_at_the_byte_budget_and_nothing_is_skipped(
    relay_apps: CommandApplications, relay_factory: Callable[..., OutboxRelay], topic_reader: Reader
) -> None:
    run = run_command(relay_apps)
    for step in ("a", "b"):
        relay_apps.executions.schedule_step("t", run, step_id=step)
    others = [run_command(relay_apps) for _ in range(2)]

    progress = drain(relay_factory, batch_bytes=1)  # every event is over budget: one per batch

    assert (progress.relayed, progress.batches) == (5, 5)
    events = decode_all(topic_reader(["executions"]))
    assert sorted(e["aggregate_id"] for e in events) == sorted(map(str, [run] * 3 + others))
    history = [e for e in events if e["aggregate_id"] == str(run)]
    assert [e["aggregate_version"] for e in history] == [1, 2, 3]
    verify_chain(history)


@pytest.mark.parametrize("how", ["option", "environment"])
def test_omium_relay_takes_its_byte_budget_from_an_option_or_the_environment(
    how: str,
    relay_apps: CommandApplications,
    relay_process_factory: Callable[..., Any],
    relay_settings: OmiumSettings,
    monkeypatch: pytest.MonkeyPatch,
    topic_reader: Reader,
) -> None:
    for _ in range(3):
        run_command(relay_apps)
    if how == "option":
        process = relay_process_factory("--once", "--batch-bytes", "1", "--linger-ms", "5")
    else:
        monkeypatch.setenv("OMIUM_RELAY__BATCH_BYTES", "1")  # read by the factory's environment
        process = relay_process_factory("--once")

    assert process.wait(timeout=60) == 0
    # Each Kafka transaction carries one position record: one per event, as the budget asks.
    assert len(topic_reader(["relay-positions"])) == 3
    assert len(topic_reader(["executions"])) == 3
