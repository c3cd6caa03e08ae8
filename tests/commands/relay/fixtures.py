"""Fixtures for the relay tests: a fresh event store schema and Kafka topic prefix per test.

Each relay test gets its own PostgreSQL schema (events, positions, chain heads) and its own topic
prefix, so tests never see each other's events and can run in any order.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from psycopg import sql

from omium.commands import CommandApplications, event_store_env
from omium.commands.relay import OutboxRelay, RelayOptions
from omium.kernel.kafka import admin_client, consumer_config, ensure_topics, topic_specs
from omium.kernel.settings import OmiumSettings

OMIUM = Path(sys.executable).with_name("omium")


@pytest.fixture
def relay_schema(settings: OmiumSettings, stack: object) -> Iterator[str]:
    """A fresh event store schema for one test, dropped afterwards."""
    schema = f"test_relay_{uuid.uuid4().hex[:10]}"
    yield schema
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def relay_settings(settings: OmiumSettings, stack: object) -> Iterator[OmiumSettings]:
    """Settings whose Kafka topic prefix is unique to this test (topics created, then deleted)."""
    kafka = settings.kafka.model_copy(
        update={"topic_prefix": f"test-relay-{uuid.uuid4().hex[:10]}", "partitions": 3}
    )
    ensure_topics(kafka)
    yield settings.model_copy(update={"kafka": kafka})
    futures = admin_client(kafka).delete_topics([spec.name for spec in topic_specs(kafka)])
    for future in futures.values():
        # Best effort: a leftover test topic is harmless, a failed cleanup must not fail a test.
        with contextlib.suppress(Exception):
            future.result(timeout=30)


@pytest.fixture
def relay_apps(relay_settings: OmiumSettings, relay_schema: str) -> Iterator[CommandApplications]:
    """The four command applications on this test's schema."""
    env = event_store_env(relay_settings, schema=relay_schema, pool_size=1, max_overflow=4)
    with CommandApplications.create(env) as apps:
        yield apps


@pytest.fixture
def relay_factory(
    relay_settings: OmiumSettings, relay_schema: str
) -> Iterator[Callable[..., OutboxRelay]]:
    """Builds relays on this test's schema and prefix; closes them afterwards."""
    built: list[OutboxRelay] = []

    def build(**options: Any) -> OutboxRelay:
        relay = OutboxRelay.create(
            relay_settings,
            schema=relay_schema,
            options=RelayOptions(**{"progress_interval_s": 60.0, **options}),
            create_topics=False,
        )
        built.append(relay)
        return relay

    yield build
    for relay in built:
        relay.close()


@pytest.fixture
def topic_reader(relay_settings: OmiumSettings) -> Callable[..., list[Message]]:
    """Reads every committed message of some areas' topics, partition by partition."""

    def read(
        areas: Sequence[str], *, timeout_s: float = 30.0, committed_only: bool = True
    ) -> list[Message]:
        prefix = relay_settings.kafka.topic_prefix
        topics = [f"{prefix}.{area}" for area in areas]
        return read_topics(relay_settings, topics, timeout_s, committed_only=committed_only)

    return read


def read_topics(
    settings: OmiumSettings, topics: Sequence[str], timeout_s: float, *, committed_only: bool
) -> list[Message]:
    """Every message of the topics up to their current end, in partition order.

    A plain confluent-kafka consumer, assigned to every partition from the beginning; it reads
    committed messages only unless ``committed_only`` is false (then aborted ones too).
    """
    isolation = "read_committed" if committed_only else "read_uncommitted"
    config = consumer_config(
        settings.kafka,
        f"test-reader-{uuid.uuid4().hex[:8]}",
        **{"enable.partition.eof": True, "isolation.level": isolation},
    )
    consumer = Consumer(config)
    try:
        metadata = consumer.list_topics(timeout=10)
        partitions = [
            TopicPartition(topic, p, OFFSET_BEGINNING)
            for topic in topics
            for p in sorted(metadata.topics[topic].partitions)
        ]
        consumer.assign(partitions)
        return _read_to_end(consumer, len(partitions), timeout_s)
    finally:
        consumer.close()


def _read_to_end(consumer: Consumer, partitions: int, timeout_s: float) -> list[Message]:
    ended: set[tuple[str | None, int | None]] = set()
    messages: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while len(ended) < partitions:
        assert time.monotonic() < deadline, f"only {len(ended)}/{partitions} partitions read"
        message = consumer.poll(0.5)
        if message is None:
            continue
        error = message.error()
        if error is not None and error.code() == KafkaError._PARTITION_EOF:
            ended.add((message.topic(), message.partition()))
        elif error is not None:
            raise AssertionError(f"consumer error: {error}")
        else:
            messages.append(message)
    return messages


def value_of(message: Message) -> bytes:
    """A consumed message's value (every relayed message has one)."""
    value = message.value()
    assert isinstance(value, bytes), "message without a value"
    return value


def key_of(message: Message) -> str:
    """A consumed message's key as text (the aggregate id)."""
    key = message.key()
    assert isinstance(key, bytes), "message without a key"
    return key.decode()


def headers_of(message: Message) -> dict[str, bytes]:
    """A consumed message's headers by name."""
    headers: dict[str, bytes] = {}
    for header in message.headers() or []:
        name, value = header[0], header[1]
        headers[str(name)] = value if isinstance(value, bytes) else b""
    return headers


@pytest.fixture
def relay_process_factory(
    relay_settings: OmiumSettings, relay_schema: str, tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Starts ``omium relay`` processes on this test's schema and prefix (killed at the end)."""
    started: list[subprocess.Popen[bytes]] = []
    scope = {
        "OMIUM_KAFKA__TOPIC_PREFIX": relay_settings.kafka.topic_prefix,
        "OMIUM_KAFKA__PARTITIONS": str(relay_settings.kafka.partitions),
        "OMIUM_RELAY__SCHEMA": relay_schema,
    }

    def start(*args: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, **scope}  # read now: a test may set variables after the fixture
        log = (tmp_path / f"relay-{len(started)}.log").open("wb")
        process = subprocess.Popen(
            [str(OMIUM), "relay", *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


@pytest.fixture
def crashing_relay_factory(
    relay_settings: OmiumSettings, relay_schema: str, tmp_path: Path
) -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], Path]]]:
    """Starts ``crashing_relay.py`` processes (a relay that SIGKILLs itself at a chosen point).

    The factory takes the point, the batch number and the batch size, and returns the process
    and its log file.
    """
    started: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "OMIUM_KAFKA__TOPIC_PREFIX": relay_settings.kafka.topic_prefix,
        "OMIUM_KAFKA__PARTITIONS": str(relay_settings.kafka.partitions),
        "OMIUM_RELAY__SCHEMA": relay_schema,
    }
    root = Path(__file__).resolve().parents[3]

    def start(point: str, batch: int, batch_size: int) -> tuple[subprocess.Popen[bytes], Path]:
        path = tmp_path / f"crashing-relay-{len(started)}.log"
        module = "tests.commands.relay.crashing_relay"
        process = subprocess.Popen(
            [sys.executable, "-m", module, point, str(batch), str(batch_size)],
            env=env,
            cwd=root,
            stdout=path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process, path

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
