"""``omium verify`` against the real stack: untouched histories verify, edits are named.

Each test stores a history through the command handlers, relays it to its own topic prefix, and
then either edits a stored event in PostgreSQL or copies the topics with one message altered,
dropped or repeated, and checks that the verifier names the first broken link.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from confluent_kafka import Message, Producer
from psycopg import sql

from omium.commands import CommandApplications, NotFoundError
from omium.commands.relay import OutboxRelay
from omium.commands.verify import BreakKind, HistoryVerifier, VerifyScope, Where
from omium.kernel.events import GENESIS_HASH, compute_hash
from omium.kernel.kafka import admin_client, ensure_topics, producer_config, topic_specs
from omium.kernel.serde import AvroSerde, default_catalog
from omium.kernel.settings import OmiumSettings
from tests.commands.relay.fixtures import headers_of, value_of
from tests.commands.relay.scenario import Recorded, record_every_event

pytestmark = pytest.mark.integration

SERDE = AvroSerde(default_catalog())
DOMAIN_AREAS = ["workflows", "executions", "consensus", "policies"]
OMIUM = Path(sys.executable).with_name("omium")
Reader = Callable[..., list[Message]]
EDITED_VERSION = 5
"""The run's ``StepCompleted`` (output ``{"text": "done"}``) in ``record_every_event``."""


@pytest.fixture
def history(relay_apps: CommandApplications, relay_factory: Callable[..., OutboxRelay]) -> Recorded:
    """Every event type stored for tenant ``acme``, one run of tenant ``other``, all relayed."""
    recorded = record_every_event(relay_apps, "acme")
    relay_apps.executions.start_execution("other", workflow_id=uuid4(), workflow_version=1)
    with relay_factory() as relay:
        relay.run(once=True)
    return recorded


@pytest.fixture
def verifier(relay_settings: OmiumSettings, relay_schema: str) -> Iterator[HistoryVerifier]:
    """A verifier of this test's schema and topic prefix."""
    with HistoryVerifier.create(relay_settings, schema=relay_schema, kafka_timeout_s=60) as built:
        yield built


@pytest.fixture
def topic_copy(relay_settings: OmiumSettings) -> Iterator[Callable[..., list[str]]]:
    """Copies messages to the domain topics of a fresh prefix (same partitions); their names."""
    prefixes: list[Any] = []

    def copy(messages: list[tuple[Message, bytes]]) -> list[str]:
        kafka = relay_settings.kafka.model_copy(
            update={"topic_prefix": f"test-verify-{uuid.uuid4().hex[:10]}"}
        )
        prefixes.append(kafka)
        ensure_topics(kafka)
        producer = Producer(producer_config(kafka))
        for message, value in messages:
            area = str(message.topic()).rsplit(".", 1)[1]
            partition = message.partition()
            assert partition is not None  # a consumed message has its partition
            producer.produce(
                f"{kafka.topic_prefix}.{area}",
                key=message.key(),
                value=value,
                headers=list(headers_of(message).items()),
                partition=partition,
            )
        assert producer.flush(30) == 0
        return [f"{kafka.topic_prefix}.{area}" for area in DOMAIN_AREAS]

    yield copy
    for kafka in prefixes:
        futures = admin_client(kafka).delete_topics([spec.name for spec in topic_specs(kafka)])
        for future in futures.values():
            with contextlib.suppress(Exception):
                future.result(timeout=30)


def message_of(messages: list[Message], aggregate_id: UUID, version: int) -> Message:
    """The relayed message of one aggregate version."""
    for message in messages:
        event = SERDE.decode(value_of(message))
        if event["aggregate_id"] == str(aggregate_id) and event["aggregate_version"] == version:
            return message
    raise AssertionError(f"no message for {aggregate_id}@{version}")


def edit_stored_event(settings: OmiumSettings, schema: str, run: UUID, version: int) -> None:
    """Change one stored event's state in PostgreSQL, as someone with database access could."""
    table = sql.Identifier(schema, "executions_events")
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        changed = conn.execute(
            sql.SQL(
                "UPDATE {} SET state = convert_to(replace(convert_from(state, 'UTF8'), "
                "'\"done\"', '\"dune\"'), 'UTF8') "
                "WHERE originator_id = %s AND originator_version = %s "
                "AND position('\"done\"'::bytea in state) > 0"
            ).format(table),
            (run, version),
        ).rowcount
    assert changed == 1


def test_an_untouched_history_verifies_for_everything_a_tenant_and_a_run(
    history: Recorded, verifier: HistoryVerifier
) -> None:
    everything = verifier.verify()
    tenant = verifier.verify(VerifyScope(tenant_id="acme"))
    run = verifier.verify(VerifyScope(execution_id=history.ids["run"]))

    assert everything.ok and tenant.ok and run.ok, everything.breaks + tenant.breaks + run.breaks
    total = history.count + 1
    assert (everything.store_events, everything.kafka_events) == (total, total)
    assert (everything.unrelayed, everything.kafka_duplicates) == (0, 0)
    assert everything.aggregates == len(history.events) + 1
    assert (tenant.store_events, tenant.kafka_events) == (history.count, history.count)
    # The run and the consensus round opened for it.
    run_events = len(history.events[history.ids["run"]]) + len(
        history.events[history.ids["reached"]]
    )
    assert (run.aggregates, run.store_events, run.kafka_events) == (2, run_events, run_events)


def test_an_edited_stored_event_is_named_with_the_hash_the_relay_published(
    history: Recorded,
    verifier: HistoryVerifier,
    relay_settings: OmiumSettings,
    relay_schema: str,
    topic_reader: Reader,
) -> None:
    run = history.ids["run"]
    published = SERDE.decode(value_of(message_of(topic_reader(["executions"]), run, 5)))

    edit_stored_event(relay_settings, relay_schema, run, EDITED_VERSION)
    report = verifier.verify(VerifyScope(execution_id=run))
    store_only = verifier.verify(VerifyScope(tenant_id="acme"), kafka=False)

    assert not report.ok and report.breaks_in(Where.KAFKA) == []
    [found] = report.breaks_in(Where.EVENT_STORE)
    assert (found.kind, found.aggregate_id, found.aggregate_version) == (
        BreakKind.HASH_MISMATCH,
        str(run),
        EDITED_VERSION,
    )
    assert found.expected == published["hash"] and found.found != published["hash"]
    assert str(run) in found.describe() and "version 5" in found.describe()
    # Without Kafka, the relay's chain head still shows the stored history changed.
    [head] = store_only.breaks
    assert (head.kind, head.aggregate_id) == (BreakKind.HASH_MISMATCH, str(run))
    assert head.aggregate_version == len(history.events[run])


def test_an_altered_message_on_a_topic_copy_is_named(
    history: Recorded, verifier: HistoryVerifier, topic_reader: Reader, topic_copy: Any
) -> None:
    run = history.ids["run"]
    messages = topic_reader(DOMAIN_AREAS)
    target = message_of(messages, run, EDITED_VERSION)
    altered = value_of(target).replace(b"done", b"dune")
    assert altered != value_of(target)
    copied = topic_copy([(m, altered if m is target else value_of(m)) for m in messages])

    report = verifier.verify(topics=copied)
    untouched = verifier.verify(topics=topic_copy([(m, value_of(m)) for m in messages]))

    assert untouched.ok, untouched.breaks
    assert report.breaks_in(Where.EVENT_STORE) == []
    [found] = report.breaks_in(Where.KAFKA)
    assert (found.kind, found.aggregate_id, found.aggregate_version) == (
        BreakKind.HASH_MISMATCH,
        str(run),
        EDITED_VERSION,
    )
    assert found.found == SERDE.decode(value_of(target))["hash"] != found.expected
    assert found.topic == copied[DOMAIN_AREAS.index("executions")]
    assert (found.partition, found.offset) == (target.partition(), target.offset())


def test_gaps_and_duplicates_on_a_topic_copy_are_named_and_resends_are_counted(
    history: Recorded, verifier: HistoryVerifier, topic_reader: Reader, topic_copy: Any
) -> None:
    run, rejected, reached = history.ids["run"], history.ids["rejected"], history.ids["reached"]
    messages = topic_reader(DOMAIN_AREAS)
    dropped = message_of(messages, run, 3)
    resent = message_of(messages, rejected, 2)
    twin = message_of(messages, reached, 2)
    copy = [(m, value_of(m)) for m in messages if m is not dropped]
    copy += [(resent, value_of(resent)), (twin, value_of(twin).replace(b"B", b"C"))]

    report = verifier.verify(topics=topic_copy(copy))

    assert report.kafka_duplicates == 1
    found = {b.aggregate_id: b for b in report.breaks_in(Where.KAFKA)}
    assert set(found) == {str(run), str(reached)}
    assert (found[str(run)].kind, found[str(run)].aggregate_version) == (BreakKind.MISSING, 3)
    assert (found[str(reached)].kind, found[str(reached)].aggregate_version) == (
        BreakKind.DUPLICATE,
        2,
    )
    # Skipping version 3, the copy's chain itself is broken at version 4 as well.
    gap_only = verifier.verify(topics=topic_copy(copy), store=False)
    gaps = {b.aggregate_id: b for b in gap_only.breaks}
    assert (gaps[str(run)].kind, gaps[str(run)].aggregate_version) == (BreakKind.VERSION_GAP, 4)
    assert (gaps[str(run)].expected, gaps[str(run)].found) == ("version 3", "version 4")


def test_events_not_relayed_yet_are_counted_not_faulted(
    history: Recorded, relay_apps: CommandApplications, verifier: HistoryVerifier
) -> None:
    relay_apps.executions.start_execution("acme", workflow_id=uuid4(), workflow_version=1)

    report = verifier.verify(VerifyScope(tenant_id="acme"))

    assert report.ok, report.breaks
    assert report.unrelayed == 1


def test_another_tenants_run_is_not_found(history: Recorded, verifier: HistoryVerifier) -> None:
    with pytest.raises(NotFoundError):
        verifier.verify(VerifyScope(execution_id=history.ids["run"], tenant_id="other"))
    with pytest.raises(NotFoundError):
        verifier.verify(VerifyScope(execution_id=uuid4()))


def test_the_command_exits_0_when_intact_and_1_naming_the_break(
    history: Recorded, relay_settings: OmiumSettings, relay_schema: str
) -> None:
    env = {
        **os.environ,
        "OMIUM_KAFKA__TOPIC_PREFIX": relay_settings.kafka.topic_prefix,
        "OMIUM_RELAY__SCHEMA": relay_schema,
    }
    run = str(history.ids["run"])

    def omium_verify(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(OMIUM), "verify", *args], env=env, capture_output=True, text=True, timeout=120
        )

    intact = omium_verify(run)
    edit_stored_event(relay_settings, relay_schema, history.ids["run"], EDITED_VERSION)
    broken = omium_verify("--tenant", "acme")
    unknown = omium_verify(str(uuid4()))
    nothing = omium_verify()

    assert intact.returncode == 0, intact.stderr
    assert "OK" in intact.stdout
    assert broken.returncode == 1, broken.stderr
    assert f"event_store: hash_mismatch in aggregate {run} version 5" in broken.stdout
    assert (unknown.returncode, nothing.returncode) == (2, 2)
    assert "not found" in unknown.stderr


def test_a_stream_processors_own_events_are_not_missing_from_the_store(
    history: Recorded, verifier: HistoryVerifier, topic_reader: Reader, topic_copy: Any
) -> None:
    # Processors emit events straight to Kafka (a rejected vote, a policy violation): chained,
    # never stored. Marked by their omium.source header, they are no break; unmarked, they are.
    messages = topic_reader(DOMAIN_AREAS)
    template = message_of(messages, history.ids["reached"], 1)
    event = SERDE.decode(value_of(template))
    event.update(aggregate_id=str(uuid4()), aggregate_version=1, prev_hash=GENESIS_HASH)
    event["event_id"] = str(uuid4())
    event["hash"] = compute_hash(event, catalog=SERDE.catalog)
    emitted = SERDE.encode(event)
    copy = [(m, value_of(m)) for m in messages]

    class Emitted:  # the template message with the processor's header added
        def __getattr__(self, name: str) -> Any:
            return getattr(template, name)

        def headers(self) -> list[tuple[str, bytes]]:
            return [*(template.headers() or []), ("omium.source", b"consensus")]

    marked = verifier.verify(topics=topic_copy([*copy, (Emitted(), emitted)]))
    unmarked = verifier.verify(topics=topic_copy([*copy, (template, emitted)]))

    assert marked.ok, marked.breaks
    assert marked.kafka_events == history.count + 2
    assert [(b.aggregate_id, b.kind) for b in unmarked.breaks] == [
        (event["aggregate_id"], BreakKind.MISSING)
    ]


def test_a_run_verifies_after_retention_pruned_its_checkpoints(
    history: Recorded, verifier: HistoryVerifier, relay_apps: CommandApplications
) -> None:
    run = history.ids["pruned"]
    view = relay_apps.executions.get_execution("acme", run)
    assert [c.state for c in view.checkpoints] == ["pruned", "pruned", "available"]

    report = verifier.verify(VerifyScope(execution_id=run))

    # The chain covers CheckpointsPruned like any event, and never the state blobs.
    assert report.ok, report.breaks
    assert report.store_events == report.kafka_events == len(history.events[run]) == 7
