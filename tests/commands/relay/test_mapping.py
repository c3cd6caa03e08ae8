"""Domain events → Avro events: every event type mapped, valid, deterministic and chained.

These run on the in-memory event store: the mapping and the batch encoding are pure, so nothing
here needs Kafka or PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4, uuid5

import pytest
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic, resolve_topic

from omium.commands import CommandApplications, event_store_env
from omium.commands.executions import Execution
from omium.commands.relay import (
    ALL_MAPPINGS,
    EVENT_ID_NAMESPACE,
    START,
    BatchEncoder,
    ChainLink,
    EncodedBatch,
    EventEncoder,
    LogSource,
    UnmappableEventError,
    event_id_for,
    sources_of,
)
from omium.kernel.events import GENESIS_HASH, new_event, verify_chain
from omium.kernel.serde import AvroSerde, default_catalog
from omium.kernel.settings import OmiumSettings
from tests.commands.relay.scenario import Recorded, record_every_event
from tests.commands.test_event_catalogue import CATALOGUE

SERDE = AvroSerde(default_catalog())
PREFIX = "unit"


@pytest.fixture
def apps(settings: OmiumSettings) -> Iterator[CommandApplications]:
    """The four applications on the in-memory store."""
    with CommandApplications.create(event_store_env(settings, backend="popo")) as built:
        yield built


@pytest.fixture
def recorded(apps: CommandApplications) -> Recorded:
    """Every event type stored once or more, for one tenant."""
    return record_every_event(apps, f"tenant-{uuid4().hex[:8]}")


def encode_all(apps: CommandApplications) -> EncodedBatch:
    """Encode every stored notification of the four logs as one batch, from empty heads."""
    batches = BatchEncoder(EventEncoder(default_catalog()), topic_prefix=PREFIX, schema="s")
    return batches.encode([(s, s.read(START, 10_000)) for s in sources_of(apps)], {})


def decoded(batch: EncodedBatch) -> list[dict[str, Any]]:
    """The Avro events of a batch (dead letters left out)."""
    return [SERDE.decode(m.value) for m in batch.messages if not m.topic.endswith(".dlq")]


def test_every_catalogued_domain_event_has_exactly_one_mapping() -> None:
    catalogued = {
        f"{get_topic(aggregate)}.{name}"
        for aggregate, events in CATALOGUE.items()
        for name in events
    }

    assert {topic for topic in ALL_MAPPINGS if topic.startswith("omium.")} == catalogued


def test_topics_stored_before_the_namespace_move_map_and_resolve_as_the_new_ones() -> None:
    for topic, mapping in ALL_MAPPINGS.items():
        if not topic.startswith("omium."):
            continue
        old = topic.removeprefix("omium.")
        assert ALL_MAPPINGS[old] is mapping
        module_and_aggregate, event_name = old.rsplit(".", 1)
        assert resolve_topic(old) is getattr(resolve_topic(module_and_aggregate), event_name)
    assert resolve_topic("commands.executions.domain:Execution") is Execution


# Domain events published under another event type: a fork is a run starting (consumers that
# create a run on ExecutionStarted need no second case), with ExecutionStarted v2's fork record.
# Changed concurrency limits are published like the first ones: the whole set, every time.
ALIASES = {
    "ExecutionForked": "ExecutionStarted",
    "ConcurrencyLimitsChanged": "ConcurrencyLimitsSet",
}


def test_each_mapping_names_its_own_event_type_and_an_existing_schema_version() -> None:
    for topic, mapping in ALL_MAPPINGS.items():
        name = topic.rsplit(".", 1)[1]
        assert ALIASES.get(name, name) == mapping.event_type
        assert mapping.schema_version in default_catalog().versions(mapping.event_type)


def test_every_stored_event_becomes_a_valid_avro_event_of_its_type(
    apps: CommandApplications, recorded: Recorded
) -> None:
    batch = encode_all(apps)

    assert batch.dead_lettered == 0
    assert batch.relayed == recorded.count
    events = decoded(batch)
    by_aggregate: dict[UUID, list[str]] = {}
    for event in events:
        by_aggregate.setdefault(UUID(event["aggregate_id"]), []).append(event["event_type"])
    assert by_aggregate == recorded.events
    assert {e["event_type"] for e in events} == {m.event_type for m in ALL_MAPPINGS.values()}


def test_events_go_to_their_area_topic_keyed_by_aggregate_with_id_headers(
    apps: CommandApplications, recorded: Recorded
) -> None:
    batch = encode_all(apps)

    for message in batch.messages:
        event = SERDE.decode(message.value)
        assert message.topic == f"{PREFIX}.{default_catalog().area_of(event['event_type'])}"
        assert message.key == event["aggregate_id"]
        assert dict(message.headers)["event_id"] == str(event["event_id"]).encode()


def test_the_envelope_comes_from_the_stored_event(
    apps: CommandApplications, recorded: Recorded
) -> None:
    stored = {
        (str(n.originator_id), n.originator_version): source.decode(n)
        for source in sources_of(apps)
        for n in source.read(START, 10_000)
    }

    for event in decoded(encode_all(apps)):
        domain = stored[(event["aggregate_id"], event["aggregate_version"])]
        assert event["event_id"] == uuid5(
            EVENT_ID_NAMESPACE, f"{event['aggregate_id']}:{event['aggregate_version']}"
        )
        assert event["tenant_id"] == recorded.tenant
        assert event["occurred_at"] == domain.timestamp
        assert event["causation_id"] is None and event["correlation_id"] is None


def test_each_aggregates_events_form_a_valid_hash_chain(
    apps: CommandApplications, recorded: Recorded
) -> None:
    report = verify_chain(decoded(encode_all(apps)))

    assert report.events == recorded.count
    assert {UUID(a): h.aggregate_version for a, h in report.heads.items()} == {
        a: len(types) for a, types in recorded.events.items()
    }


def test_encoding_the_same_stored_events_twice_gives_identical_bytes(
    apps: CommandApplications, recorded: Recorded
) -> None:
    first, second = encode_all(apps), encode_all(apps)

    assert [m.value for m in first.messages] == [m.value for m in second.messages]
    assert first.heads == second.heads


def test_the_relay_writes_the_same_bytes_as_new_event_then_serde_encode(
    apps: CommandApplications, recorded: Recorded
) -> None:
    """The encoder checks each event once (not three times); what it writes, hash included,
    is byte for byte what the kernel's new_event() and AvroSerde.encode() give."""
    encoder = EventEncoder(default_catalog())
    values = iter(m.value for m in encode_all(apps).messages)
    prev: dict[str, str] = {}
    for source in sources_of(apps):
        for notification in source.read(START, 10_000):
            domain = source.decode(notification)
            mapping = encoder.mapping_for(notification.topic)
            assert mapping is not None
            aggregate = str(domain.originator_id)
            expected = new_event(
                mapping.event_type,
                tenant_id=domain.tenant_id,
                aggregate_id=domain.originator_id,
                aggregate_version=domain.originator_version,
                payload=mapping.payload(domain),
                prev_hash=prev.get(aggregate, GENESIS_HASH),
                occurred_at=domain.timestamp,
                event_id=event_id_for(domain.originator_id, domain.originator_version),
                schema_version=mapping.schema_version,
            )
            prev[aggregate] = expected["hash"]
            assert next(values) == SERDE.encode(expected)


def test_payload_fields_carry_the_domain_values(
    apps: CommandApplications, recorded: Recorded
) -> None:
    events = {(e["aggregate_id"], e["event_type"]): e["payload"] for e in decoded(encode_all(apps))}
    run, policy = str(recorded.ids["run"]), str(recorded.ids["policy"])

    assert json.loads(events[(run, "ExecutionStarted")]["input_json"]) == {"topic": "batteries"}
    assert events[(run, "StepFailed")]["error_message"] == "boom"
    assert events[(run, "CheckpointCreated")]["checkpoint_id"] == "cp-a"
    assert events[(run, "ExecutionRolledBack")]["resume_step_id"] == "a"
    assert events[(policy, "PolicyPublished")]["policy_id"] == "budget.max_cost"
    registered = events[(str(recorded.ids["workflow"]), "WorkflowRegistered")]
    assert registered["step_ids"] == ["a", "b"] and registered["version"] == 1


def test_a_missing_chain_head_is_rebuilt_from_the_aggregates_history(
    apps: CommandApplications, recorded: Recorded
) -> None:
    full = encode_all(apps)
    run = str(recorded.ids["run"])
    executions = LogSource(apps.executions)
    later = [n for n in executions.read(START, 10_000) if n.originator_version > 5]
    batches = BatchEncoder(EventEncoder(default_catalog()), topic_prefix=PREFIX, schema="s")

    partial = batches.encode([(executions, later)], heads={})

    assert partial.heads[run] == full.heads[run]
    resent = {m.value for m in partial.messages}
    assert resent <= {m.value for m in full.messages}


def _bad_notification(topic: str, state: bytes, version: int = 1) -> Notification:
    return Notification(
        id=10_000, originator_id=uuid4(), originator_version=version, topic=topic, state=state
    )


@pytest.mark.parametrize(
    ("topic", "state"),
    [
        ("omium.commands.executions.domain:Execution.NoSuchEvent", b'{"tenant_id": "t"}'),
        (f"{get_topic(Execution)}.StepStarted", b"{not json"),
        (f"{get_topic(Execution)}.StepStarted", b'{"tenant_id": "t"}'),
    ],
    ids=["unknown-topic", "not-json", "missing-attributes"],
)
def test_an_event_that_cannot_be_mapped_becomes_a_dead_letter_with_its_stored_json(
    apps: CommandApplications, topic: str, state: bytes
) -> None:
    batches = BatchEncoder(EventEncoder(default_catalog()), topic_prefix=PREFIX, schema="s")
    bad = _bad_notification(topic, state)

    batch = batches.encode([(LogSource(apps.executions), [bad])], heads={})

    assert batch.dead_lettered == 1 and batch.relayed == 0
    [letter] = batch.messages
    headers = dict(letter.headers)
    assert letter.topic == f"{PREFIX}.dlq" and letter.key == str(bad.originator_id)
    assert headers["dlq.source_offset"] == b"10000"
    assert headers["dlq.reason"].decode().startswith(topic)
    document = json.loads(letter.value)
    assert document["topic"] == topic and document["originator_version"] == 1
    assert document.get("state", document.get("state_text")) is not None
    assert {name: p.notification_id for name, p in batch.positions.items()} == {
        "Executions": 10_000
    }


def test_a_dead_lettered_version_is_skipped_by_the_chain(apps: CommandApplications) -> None:
    run = apps.executions.start_execution("t", workflow_id=uuid4(), workflow_version=1)
    apps.executions.schedule_step("t", run.aggregate_id, step_id="a")
    apps.executions.start_step("t", run.aggregate_id, step_id="a")
    source = LogSource(apps.executions)
    first, second, third = source.read(START, 10)
    broken = Notification(
        id=second.id,
        originator_id=second.originator_id,
        originator_version=2,
        topic=second.topic,
        state=b"{}",
    )
    batches = BatchEncoder(EventEncoder(default_catalog()), topic_prefix=PREFIX, schema="s")

    batch = batches.encode([(source, [first, broken, third])], heads={})

    started, letter, step = batch.messages
    assert letter.topic.endswith(".dlq")
    assert SERDE.decode(step.value)["prev_hash"] == SERDE.decode(started.value)["hash"]
    assert batch.heads[str(run.aggregate_id)] == ChainLink(3, SERDE.decode(step.value)["hash"])


def test_an_encoder_refuses_a_topic_it_has_no_mapping_for() -> None:
    encoder = EventEncoder(default_catalog(), mappings={})

    with pytest.raises(UnmappableEventError) as caught:
        encoder.encode(object(), topic="x:Y.Z", prev_hash=GENESIS_HASH)

    assert caught.value.topic == "x:Y.Z"


def test_event_ids_are_uuid5_of_aggregate_and_version() -> None:
    aggregate = uuid4()

    assert event_id_for(aggregate, 3) == event_id_for(str(aggregate), 3)
    assert event_id_for(aggregate, 3) != event_id_for(aggregate, 4)


def test_a_fork_is_an_execution_started_with_its_origin(
    apps: CommandApplications, recorded: Recorded
) -> None:
    fork = str(recorded.ids["fork"])
    started = next(
        e
        for e in decoded(encode_all(apps))
        if str(e["aggregate_id"]) == fork and e["event_type"] == "ExecutionStarted"
    )

    assert started["schema_version"] == 2
    payload = started["payload"]
    assert payload["trigger"] == "fork"
    assert str(payload["parent_execution_id"]) == str(recorded.ids["run"])
    assert payload["forked_from_checkpoint_id"] is None  # not a UUID: named in fork instead
    origin = payload["fork"]
    assert origin["checkpoint_id"] == "cp-a" and origin["state_edited"] is True
    assert (origin["checkpoint_step_id"], origin["checkpoint_position"]) == ("a", "after")
    assert origin["steps"] == [
        {
            "step_id": "a",
            "status": "scheduled",  # it was running when cp-a was taken: it runs again
            "agent": "agents.a:run",
            "output_json": None,
        }
    ]
