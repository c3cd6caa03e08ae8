"""``omium up --profile ha``: three KRaft brokers, RF 3, min.insync.replicas 2, acks=all.

With one broker killed (-9), every acknowledged write is still there exactly once, transactions
still commit, and Omium's relay and verifier work unchanged; the broker comes back and rejoins
every partition's ISR. The three nodes are stopped at the end (they cost ~1 GiB and CPU).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from psycopg import sql

from omium.commands import CommandApplications, event_store_env
from omium.commands.relay import OutboxRelay, RelayOptions
from omium.commands.verify import HistoryVerifier
from omium.infra.localstack import LocalStack, ha_bootstrap_servers
from omium.kernel.kafka import (
    admin_client,
    consumer_config,
    describe_topic,
    ensure_topics,
    producer_config,
    topic_name,
)
from omium.kernel.settings import OmiumSettings
from omium.streams.base import ProcessorConfig, StreamRuntime
from omium.streams.consensus import ConsensusProcessor

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HA_NODES = ("kafka-ha-1", "kafka-ha-2", "kafka-ha-3")


@pytest.fixture(scope="module")
def ha_stack(stack: OmiumSettings) -> Iterator[LocalStack]:
    """The three HA brokers started (PostgreSQL and Redis already run); stopped afterwards."""
    local = LocalStack(stack)
    local.up("ha")
    yield local
    local.down(names=HA_NODES)


@pytest.fixture
def ha_settings(ha_stack: LocalStack) -> Iterator[OmiumSettings]:
    """Settings on the HA cluster (RF 3) with a topic prefix of this test's own."""
    base = ha_stack.settings
    kafka = base.kafka.model_copy(
        update={
            "bootstrap_servers": ha_bootstrap_servers(base),
            "replication_factor": 3,
            "partitions": 3,
            "topic_prefix": f"ha-{uuid.uuid4().hex[:10]}",
        }
    )
    ensure_topics(kafka)
    yield base.model_copy(update={"kafka": kafka})
    ours = [
        name
        for name in admin_client(kafka).list_topics(timeout=10).topics
        if name.startswith(kafka.topic_prefix)
    ]
    if not ours:
        return
    for future in admin_client(kafka).delete_topics(ours).values():
        with contextlib.suppress(Exception):
            future.result(timeout=30)


def kill_node(stack: LocalStack, name: str) -> None:
    """kill -9 one broker (the pid ``omium up`` recorded)."""
    pid = int(stack.component(name).pid_file.read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while stack.component(name).probe(1.0) is None:
        assert time.monotonic() < deadline, f"{name} still answers"
        time.sleep(0.2)


def produce(settings: OmiumSettings, topic: str, values: list[bytes]) -> None:
    """Produce with Omium's producer settings and require every acknowledgement."""
    config = producer_config(settings.kafka)
    assert config["acks"] == "all" and config["enable.idempotence"] is True
    producer = Producer(config)
    failed: list[str] = []

    def delivered(error: KafkaError | None, _message: object) -> None:
        if error is not None:
            failed.append(str(error))

    for index, value in enumerate(values):
        producer.produce(topic, key=str(index % 7).encode(), value=value, on_delivery=delivered)
    assert producer.flush(60) == 0
    assert failed == []


def read_all(settings: OmiumSettings, topic: str, partitions: int) -> list[bytes]:
    """Every committed message of a topic, from the beginning to its end."""
    config = consumer_config(
        settings.kafka, f"ha-read-{uuid.uuid4().hex[:8]}", **{"enable.partition.eof": True}
    )
    consumer = Consumer(config)
    values: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        ended: set[int] = set()
        deadline = time.monotonic() + 60
        while len(ended) < partitions:
            assert time.monotonic() < deadline, "topic not read to its end"
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                ended.add(int(message.partition() or 0))
            elif error is None:
                values.append(bytes(message.value() or b""))
    finally:
        consumer.close()
    return values


def in_sync_everywhere(settings: OmiumSettings, topic: str) -> bool:
    """Whether every partition of ``topic`` has all three replicas in sync."""
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    metadata = admin.list_topics(topic, timeout=10).topics[topic]
    return all(len(p.isrs) == 3 for p in metadata.partitions.values())


def test_topics_have_three_replicas_and_two_in_sync_required(ha_settings: OmiumSettings) -> None:
    described = describe_topic(ha_settings.kafka, topic_name(ha_settings.kafka, "executions"))
    assert described.replication_factor == 3
    assert described.config["min.insync.replicas"] == "2"
    internal = AdminClient({"bootstrap.servers": ha_settings.kafka.bootstrap_servers})
    offsets = internal.list_topics(timeout=10).topics.get("__consumer_offsets")
    if offsets is not None:  # created by the first consumer group
        assert all(len(p.replicas) == 3 for p in offsets.partitions.values())
    runtime_config = StreamRuntime(
        ConsensusProcessor(), ProcessorConfig(app_id="consensus", kafka=ha_settings.kafka),
        serde=None,  # type: ignore[arg-type]
    )._producer_config()  # fmt: skip
    assert runtime_config["acks"] == "all"


def test_a_killed_broker_loses_no_acknowledged_write_and_rejoins(
    ha_stack: LocalStack, ha_settings: OmiumSettings
) -> None:
    topic = topic_name(ha_settings.kafka, "traces")
    before = [f"before-{i}".encode() for i in range(300)]
    after = [f"after-{i}".encode() for i in range(300)]
    produce(ha_settings, topic, before)

    kill_node(ha_stack, "kafka-ha-2")
    produce(ha_settings, topic, after)
    with_one_down = read_all(ha_settings, topic, 3)
    ha_stack.up("ha")
    deadline = time.monotonic() + 120
    while not in_sync_everywhere(ha_settings, topic):
        assert time.monotonic() < deadline, "the restarted broker never rejoined the ISR"
        time.sleep(1)
    after_rejoin = read_all(ha_settings, topic, 3)

    assert sorted(with_one_down) == sorted(before + after)
    assert sorted(after_rejoin) == sorted(before + after)


def test_the_relay_and_the_verifier_work_unchanged_with_a_broker_down(
    ha_stack: LocalStack, ha_settings: OmiumSettings
) -> None:
    schema = f"test_ha_{uuid.uuid4().hex[:10]}"
    env = event_store_env(ha_settings, schema=schema, pool_size=1, max_overflow=2)
    options = RelayOptions(progress_interval_s=60.0)
    try:
        with CommandApplications.create(env) as apps:
            runs = [
                apps.executions.start_execution(
                    "t-ha", workflow_id=uuid.uuid4(), workflow_version=1
                )
                for _ in range(5)
            ]
            with OutboxRelay.create(ha_settings, schema=schema, options=options) as relay:
                assert relay.run(once=True).relayed == 5
            kill_node(ha_stack, "kafka-ha-3")
            for run in runs:
                apps.executions.schedule_step("t-ha", run.aggregate_id, step_id="a")
            with OutboxRelay.create(
                ha_settings, schema=schema, options=options, create_topics=False
            ) as relay:
                assert relay.run(once=True).relayed == 5
            with HistoryVerifier.create(ha_settings, schema=schema) as verifier:
                report = verifier.verify()
        assert report.ok, report.breaks
        assert (report.store_events, report.kafka_events, report.unrelayed) == (10, 10, 0)
    finally:
        ha_stack.up("ha")
        with psycopg.connect(ha_settings.postgres.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
