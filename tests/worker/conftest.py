"""Fixtures for the worker tests: a topic prefix and an event store schema of each test's own."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import redis
from psycopg import sql

from omium.commands import CommandApplications, event_store_env
from omium.commands.executions import ExecutionView
from omium.kernel.kafka import admin_client, ensure_topics
from omium.kernel.settings import OmiumSettings
from omium.sdk.workflow import parse_workflow_dict

PARTITIONS = 3


@pytest.fixture
def worker_settings(stack: OmiumSettings) -> Iterator[OmiumSettings]:
    """Settings with this test's own topic prefix (its topics are deleted afterwards)."""
    prefix = f"tw{uuid.uuid4().hex[:10]}"
    kafka = stack.kafka.model_copy(update={"topic_prefix": prefix, "partitions": PARTITIONS})
    ensure_topics(kafka)
    yield stack.model_copy(update={"kafka": kafka})
    admin = admin_client(kafka)
    names = [name for name in admin.list_topics(timeout=10).topics if name.startswith(prefix)]
    if names:
        for future in admin.delete_topics(names).values():
            future.exception(timeout=30)  # best effort: a leftover test topic is harmless


@pytest.fixture
def event_schema(stack: OmiumSettings) -> Iterator[str]:
    """A fresh event store schema, dropped afterwards."""
    schema = f"test_worker_{uuid.uuid4().hex[:10]}"
    yield schema
    with psycopg.connect(stack.postgres.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def test_apps(worker_settings: OmiumSettings, event_schema: str) -> Iterator[CommandApplications]:
    """The command applications on this test's schema (what the test itself writes with)."""
    env = event_store_env(worker_settings, schema=event_schema, pool_size=1, max_overflow=4)
    with CommandApplications.create(env) as apps:
        yield apps


@pytest.fixture
def redis_log(stack: OmiumSettings) -> Iterator[tuple[redis.Redis, str]]:
    """A Redis client and a key prefix for what the test agents record."""
    client = redis.Redis.from_url(stack.redis.url)
    key = f"test:worker:{uuid.uuid4().hex[:10]}"
    yield client, key
    for found in client.scan_iter(f"{key}*"):
        client.delete(found)


def text(reply: bytes | str) -> str:
    """A Redis reply as text (the tests' clients do not decode responses)."""
    return reply.decode() if isinstance(reply, bytes) else reply


def get_text(client: redis.Redis, key: str) -> str | None:
    """The value of a Redis string key as text; ``None`` if there is none."""
    reply = client.get(key)
    return None if reply is None else text(reply)


def start_run(
    apps: CommandApplications, definition: dict[str, Any], run_input: dict[str, Any]
) -> tuple[str, Any]:
    """Register ``definition`` (validated first) for tenant ``acme`` and start one run."""
    workflow = parse_workflow_dict(definition)
    registered = apps.workflows.register_workflow(
        "acme", name=workflow.name, definition=workflow.to_definition()
    )
    started = apps.executions.start_execution(
        "acme", workflow_id=registered.aggregate_id, workflow_version=1, input=run_input
    )
    return "acme", started.aggregate_id


def wait_for_run(
    apps: CommandApplications,
    tenant: str,
    execution_id: Any,
    *,
    timeout_s: float = 60.0,
    check: Callable[[], None] = lambda: None,
) -> ExecutionView:
    """Poll the run until it ended (or fail the test after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        check()
        view = apps.executions.get_execution(tenant, execution_id)
        if view.state in ("completed", "failed", "halted", "cancelled"):
            return view
        if time.monotonic() > deadline:
            steps = {s.step_id: (s.status, s.attempts) for s in view.steps}
            raise AssertionError(f"run still {view.state} after {timeout_s}s: {steps}")
        time.sleep(0.2)
