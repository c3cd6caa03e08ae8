"""Fixtures for the stream processor tests: a private topic prefix per test, runtimes in threads."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from omium.kernel.kafka import EventProducer, ensure_topics
from omium.kernel.serde import AvroSerde, default_catalog
from omium.kernel.settings import KafkaSettings, OmiumSettings
from omium.streams.base import Processor, ProcessorConfig, StreamRuntime

if TYPE_CHECKING:
    from omium.commands import CommandApplications

PARTITIONS = 3


@pytest.fixture
def kafka(stack: OmiumSettings) -> KafkaSettings:
    """Kafka settings with a topic prefix of this test's own, and its topics created."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    settings = stack.kafka.model_copy(update={"topic_prefix": prefix, "partitions": PARTITIONS})
    ensure_topics(settings)
    return settings


@pytest.fixture
def serde() -> AvroSerde:
    """The serde over the shipped schemas."""
    return AvroSerde(default_catalog())


@pytest.fixture
def config_factory(kafka: KafkaSettings, tmp_path: Path) -> Callable[..., ProcessorConfig]:
    """Builds a processor config on this test's topics, with its state under ``tmp_path``."""

    def build(app_id: str, **overrides: Any) -> ProcessorConfig:
        values: dict[str, Any] = {
            "app_id": app_id,
            "kafka": kafka,
            "instance_id": "i0",
            "state_dir": tmp_path / "state",
            "session_timeout_ms": 6000,
        }
        values.update(overrides)
        return ProcessorConfig(**values)

    return build


class RunningRuntime:
    """A runtime processing in a background thread until :meth:`stop`."""

    def __init__(self, runtime: StreamRuntime) -> None:
        self.runtime = runtime
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.runtime.run(self._stop)
        except BaseException as exc:  # surfaced by stop()
            self._error = exc

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
        if self._error is not None:
            raise self._error


@pytest.fixture
def runtime_factory(serde: AvroSerde) -> Iterator[Callable[..., RunningRuntime]]:
    """Starts runtimes in threads; every one still running is stopped at teardown."""
    started: list[RunningRuntime] = []

    def start(processor: Processor, config: ProcessorConfig, **kwargs: Any) -> RunningRuntime:
        running = RunningRuntime(StreamRuntime(processor, config, serde=serde, **kwargs))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def publish(kafka: KafkaSettings, serde: AvroSerde) -> Callable[..., None]:
    """Publishes events to their topics with the kernel's producer (as the relay would)."""

    def send(*events: dict[str, Any]) -> None:
        with EventProducer(kafka, serde) as producer:
            for event in events:
                producer.publish(event)

    return send


@pytest.fixture
def read_events(kafka: KafkaSettings, serde: AvroSerde) -> Callable[..., list[dict[str, Any]]]:
    """Reads committed events of an area from the beginning until ``count`` arrived or timeout."""

    def read(
        area: str,
        *,
        count: int,
        timeout_s: float = 30.0,
        where: Callable[[dict[str, Any]], bool] = lambda e: True,
        settle_s: float = 0.0,
    ) -> list[dict[str, Any]]:
        consumer = Consumer(
            {
                "bootstrap.servers": kafka.bootstrap_servers,
                "group.id": f"reader-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        topic = f"{kafka.topic_prefix}.{area}"
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        settle_until: float | None = None
        try:
            while time.monotonic() < deadline:
                for message in consumer.consume(500, 0.3):
                    if message.error() is None:
                        event = serde.decode(message.value() or b"")
                        if where(event):
                            found.append(event)
                if len(found) >= count:
                    # Keep reading a little to catch duplicates beyond the expected count.
                    settle_until = settle_until or time.monotonic() + settle_s
                    if time.monotonic() >= settle_until:
                        break
        finally:
            consumer.close()
        return found

    return read


@pytest.fixture(scope="session")
def streams_pg_schema(stack: OmiumSettings) -> Iterator[str]:
    """A fresh PostgreSQL schema for this session's event tables, dropped at the end."""
    import psycopg
    from psycopg import sql

    schema = f"test_streams_{uuid.uuid4().hex[:10]}"
    psycopg.connect(stack.postgres.dsn(), autocommit=True, connect_timeout=5).close()
    try:
        yield schema
    finally:
        # A new connection: the stack restart test may have restarted PostgreSQL meanwhile.
        with psycopg.connect(stack.postgres.dsn(), autocommit=True, connect_timeout=5) as admin:
            admin.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )


@pytest.fixture
def apps_factory(
    stack: OmiumSettings, streams_pg_schema: str
) -> Iterator[Callable[[], CommandApplications]]:
    """Builds command applications on the real event store (this session's schema)."""
    from omium.commands import CommandApplications, event_store_env

    built: list[CommandApplications] = []

    def build() -> CommandApplications:
        env = event_store_env(stack, schema=streams_pg_schema, pool_size=1, max_overflow=4)
        apps = CommandApplications.create(env)
        built.append(apps)
        return apps

    yield build
    for apps in built:
        apps.close()


def member_client_id(kafka: KafkaSettings, instance_id: str) -> str:
    """The Kafka client id prefix ``worker_process_factory`` gives one instance."""
    return f"{kafka.client_id}-{instance_id}"


@pytest.fixture
def worker_process_factory(
    kafka: KafkaSettings, tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Starts ``omium worker <name>`` processes on this test's topics; kills leftovers."""
    import os
    import sys

    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, *, instance_id: str = "p0") -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "OMIUM_KAFKA__TOPIC_PREFIX": kafka.topic_prefix,
            "OMIUM_KAFKA__PARTITIONS": str(kafka.partitions),
            "OMIUM_LOG_LEVEL": "WARNING",
            # Tells the instances apart in the consumer group (see ``member_client_id``).
            "OMIUM_KAFKA__CLIENT_ID": member_client_id(kafka, instance_id),
        }
        log = open(tmp_path / f"{name}-{instance_id}-{len(started)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "omium"),
                "worker",
                name,
                "--instance-id",
                instance_id,
                "--state-dir",
                str(tmp_path / "state" / instance_id),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)
