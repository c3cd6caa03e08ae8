"""The kernel's Kafka plumbing against the real local broker."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Message

from omium.kernel.kafka import (
    TELEMETRY_AREAS,
    Area,
    ConsumedEvent,
    EventConsumer,
    EventProducer,
    consumer_config,
    describe_topic,
    ensure_topics,
    topic_name,
)
from omium.kernel.serde import AvroSerde
from omium.kernel.settings import KafkaSettings
from omium.testing.samples import sample_event
from tests.commands.relay.fixtures import headers_of

pytestmark = pytest.mark.integration

KafkaFactory = Callable[..., KafkaSettings]


def all_topics(kafka: KafkaSettings) -> list[str]:
    return [topic_name(kafka, area) for area in Area if area is not Area.DLQ]


def drain(consumer: EventConsumer, expected: int, *, rounds: int = 30) -> list[ConsumedEvent]:
    """Poll until ``expected`` events arrived (or give up after ``rounds`` empty-ish polls)."""
    received: list[ConsumedEvent] = []
    for _ in range(rounds):
        received += consumer.poll(max_messages=500, timeout_s=1.0)
        if len(received) >= expected:
            break
    return received


def read_raw(kafka: KafkaSettings, topic: str, expected: int) -> list[Message]:
    consumer = Consumer(consumer_config(kafka, f"raw-{uuid.uuid4()}"))
    consumer.subscribe([topic])
    messages: list[Message] = []
    for _ in range(30):
        messages += [m for m in consumer.consume(100, 1.0) if m.error() is None]
        if len(messages) >= expected:
            break
    consumer.close()
    return messages


def test_every_event_type_round_trips_through_kafka(
    kafka_settings_factory: KafkaFactory, serde: AvroSerde
) -> None:
    kafka = kafka_settings_factory()
    sent = {}
    with EventProducer(kafka, serde) as producer:
        for event_type in serde.catalog.event_types():
            event = sample_event(event_type)
            topic = producer.publish(event)
            assert topic == f"{kafka.topic_prefix}.{serde.catalog.area_of(event_type)}"
            sent[event["event_id"]] = (topic, event)

    with EventConsumer(kafka, serde, group_id="roundtrip", topics=all_topics(kafka)) as consumer:
        received = drain(consumer, len(sent))
        consumer.commit()

    assert len(received) == len(sent)
    for consumed in received:
        topic, original = sent[consumed.event["event_id"]]
        assert consumed.topic == topic
        assert consumed.key == str(original["aggregate_id"]).encode()
        assert consumed.event == original


def test_old_schema_version_is_read_as_the_new_one_through_kafka(
    kafka_settings_factory: KafkaFactory, serde: AvroSerde
) -> None:
    evolved = [t for t in serde.catalog.event_types() if serde.catalog.latest_version(t) > 1]
    assert evolved, "at least one event type must have a v2 schema"
    kafka = kafka_settings_factory()
    with EventProducer(kafka, serde) as producer:
        for event_type in evolved:
            producer.publish(sample_event(event_type, schema_version=1))

    with EventConsumer(kafka, serde, group_id="evolve", topics=all_topics(kafka)) as consumer:
        received = drain(consumer, len(evolved))

    assert sorted(c.event["event_type"] for c in received) == sorted(evolved)
    for consumed in received:
        latest = sample_event(consumed.event["event_type"])
        # The reader (latest) schema filled in every field v1 did not have.
        assert set(consumed.event["payload"]) == set(latest["payload"])


def test_bad_messages_go_to_the_dlq_with_a_reason_and_the_consumer_keeps_going(
    kafka_settings_factory: KafkaFactory, serde: AvroSerde
) -> None:
    kafka = kafka_settings_factory(partitions=1)
    topic = topic_name(kafka, Area.EXECUTIONS)
    good_before, good_after = sample_event("ExecutionStarted"), sample_event("ExecutionCompleted")
    garbage = os.urandom(64)
    unknown_fingerprint = b"\xc3\x01" + os.urandom(8) + serde.encode(good_before)[10:]
    with EventProducer(kafka, serde) as producer:
        producer.publish(good_before)
        producer.send(topic, key="bad-1", value=garbage)
        producer.send(topic, key="bad-2", value=unknown_fingerprint)
        producer.publish(good_after)

    handled: list[str] = []
    with EventConsumer(kafka, serde, group_id="dlq-test", topics=[topic]) as consumer:
        for _ in range(20):
            consumer.process(lambda c: handled.append(c.event["event_id"]), timeout_s=1.0)
            if len(handled) == 2:
                break

    assert handled == [good_before["event_id"], good_after["event_id"]]
    letters = read_raw(kafka, topic_name(kafka, Area.DLQ), 2)
    assert [m.value() for m in letters] == [garbage, unknown_fingerprint]
    headers = [headers_of(m) for m in letters]
    assert headers[0]["dlq.source_topic"] == topic.encode()
    assert [h["dlq.source_offset"] for h in headers] == [b"1", b"2"]
    assert all(h["dlq.consumer_group"] == b"dlq-test" for h in headers)
    assert headers[1]["dlq.error_type"] == b"UnknownSchemaError"
    assert unknown_fingerprint[2:10].hex().encode() in headers[1]["dlq.reason"]
    assert headers[0]["dlq.error_type"] == b"CorruptMessageError"


def test_a_handler_failure_is_dead_lettered_with_its_error(
    kafka_settings_factory: KafkaFactory, serde: AvroSerde
) -> None:
    kafka = kafka_settings_factory(partitions=1)
    topic = topic_name(kafka, Area.CONSENSUS)
    events = [sample_event("VoteCast") for _ in range(3)]
    with EventProducer(kafka, serde) as producer:
        for event in events:
            producer.publish(event)

    def handler(consumed: ConsumedEvent) -> None:
        if consumed.event["event_id"] == events[1]["event_id"]:
            raise ValueError("vote for an unknown round")

    with EventConsumer(kafka, serde, group_id="handler-fail", topics=[topic]) as consumer:
        total = sum(consumer.process(handler) for _ in range(10))
    assert total == 3
    [letter] = read_raw(kafka, topic_name(kafka, Area.DLQ), 1)
    assert headers_of(letter)["dlq.reason"] == b"vote for an unknown round"
    assert serde.decode(letter.value() or b"") == events[1]


def test_uncommitted_events_are_redelivered_and_committed_ones_are_not(
    kafka_settings_factory: KafkaFactory, serde: AvroSerde
) -> None:
    kafka = kafka_settings_factory()
    topic = topic_name(kafka, Area.FAILURES)
    events = [sample_event("FailureDetected") for _ in range(5)]
    with EventProducer(kafka, serde) as producer:
        for event in events:
            producer.publish(event)

    with EventConsumer(kafka, serde, group_id="commits", topics=[topic]) as consumer:
        assert len(drain(consumer, 5)) == 5  # read, never committed: a crash here loses nothing
    with EventConsumer(kafka, serde, group_id="commits", topics=[topic]) as consumer:
        assert len(drain(consumer, 5)) == 5
        consumer.commit()
    with EventConsumer(kafka, serde, group_id="commits", topics=[topic]) as consumer:
        assert drain(consumer, 1, rounds=5) == []


def test_topics_are_created_with_configured_partitions_and_retention(
    kafka_settings_factory: KafkaFactory,
) -> None:
    kafka = kafka_settings_factory(
        create_topics=False, partitions=4, telemetry_retention_ms=3_600_000
    )
    created = ensure_topics(kafka)
    assert sorted(created) == sorted(topic_name(kafka, area) for area in Area)
    assert ensure_topics(kafka) == []  # a second run changes nothing

    for area in Area:
        description = describe_topic(kafka, topic_name(kafka, area))
        assert description.partitions == 4
        assert description.replication_factor == kafka.replication_factor
        expected = "3600000" if area in TELEMETRY_AREAS else "-1"
        assert description.config["retention.ms"] == expected, area
