"""The real local stack: idempotent ``up``, truthful ``status``, data surviving ``down``/``up``.

The restart test stops the shared stack, so it is marked ``restarts_stack`` (run last) and brings
the stack back up whatever happens.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

# confluent-kafka's stubs do not re-export NewTopic from confluent_kafka.admin.
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from omium.infra.localstack import PROFILES, LocalStack
from omium.kernel.settings import OmiumSettings

OMIUM = str(Path(sys.executable).parent / "omium")


def omium(*args: str, timeout_s: float = 600) -> str:
    """Run the real ``omium`` CLI, fail the test with its output if it fails."""
    result = subprocess.run(
        [OMIUM, *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"omium {' '.join(args)} exited {result.returncode}:\n{output}"
    return output


def _profile_names(settings: OmiumSettings) -> tuple[str, ...]:
    return PROFILES[settings.stack.profile]


def _pids(local_stack: LocalStack) -> dict[str, int | None]:
    return {row.name: row.pid for row in local_stack.status()}


@pytest.mark.integration
def test_status_reports_every_component_running(
    stack: OmiumSettings, local_stack: LocalStack
) -> None:
    rows = {row.name: row for row in local_stack.status()}
    for name in _profile_names(stack):
        assert rows[name].state == "running", rows[name]
        assert rows[name].pid is not None
        assert Path(rows[name].log_path).exists()
    output = omium("status")
    for name in _profile_names(stack):
        line = next(line for line in output.splitlines() if f" {name} " in line)
        assert "running" in line, output


@pytest.mark.integration
def test_up_twice_starts_nothing(stack: OmiumSettings, local_stack: LocalStack) -> None:
    before = _pids(local_stack)
    output = omium("up", "--profile", stack.stack.profile)
    assert "started" not in output.replace("already running", ""), output
    for name in _profile_names(stack):
        assert f"already running {name}" in output, output
    assert _pids(local_stack) == before


def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    producer.produce(topic, key=b"k", value=value)
    assert producer.flush(30) == 0


def _consume_first(bootstrap: str, topic: str, deadline_s: float = 60) -> bytes | None:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"infra-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                return message.value()
        return None
    finally:
        consumer.close()


@pytest.fixture
def restart_guard(local_stack: LocalStack, stack: OmiumSettings) -> Iterator[None]:
    """Whatever the test does to the stack, leave it up for the tests after it."""
    yield
    if any(
        row.state != "running" for row in local_stack.status() if row.name in _profile_names(stack)
    ):
        omium("up", "--profile", stack.stack.profile)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.restarts_stack
@pytest.mark.timeout(900)
def test_down_then_up_keeps_kafka_postgres_and_redis_data(
    stack: OmiumSettings, local_stack: LocalStack, restart_guard: None
) -> None:
    marker = uuid.uuid4().hex
    topic = f"omium-infra-restart-{marker[:12]}"
    bootstrap = stack.kafka.bootstrap_servers
    _produce(bootstrap, topic, marker.encode())
    with psycopg.connect(stack.postgres.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS infra_restart_probe (marker text PRIMARY KEY)")
        conn.execute("INSERT INTO infra_restart_probe VALUES (%s)", (marker,))
    live = redis.Redis.from_url(stack.redis.url)
    live.set(f"infra-restart:{marker}", marker)
    live.close()
    before = _pids(local_stack)

    down = omium("down")
    rows = {row.name: row for row in local_stack.status(timeout_s=0.5)}
    for name in _profile_names(stack):
        assert f"{name} (pid {before[name]})" in down, down
        assert rows[name].state == "stopped", rows[name]

    up = omium("up", "--profile", stack.stack.profile)
    for name in _profile_names(stack):
        assert f"started {name}" in up, up
    local_stack.check_ready()
    after = _pids(local_stack)
    assert all(after[name] != before[name] for name in _profile_names(stack))

    assert _consume_first(bootstrap, topic) == marker.encode()
    with psycopg.connect(stack.postgres.dsn(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT marker FROM infra_restart_probe WHERE marker = %s", (marker,)
        ).fetchone()
        assert row == (marker,)
        conn.execute("DELETE FROM infra_restart_probe WHERE marker = %s", (marker,))
    live = redis.Redis.from_url(stack.redis.url)
    assert live.get(f"infra-restart:{marker}") == marker.encode()
    live.delete(f"infra-restart:{marker}")
    live.close()
    # Keep the client referenced until the future resolves: destroying it cancels the request.
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.delete_topics([topic])[topic].result(30)
