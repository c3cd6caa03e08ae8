"""The savers' embedded mode (``from_conn_string``) on the real PostgreSQL and Kafka.

The same suites as the gateway mode (the conformance suite, subgraphs with an interrupt and
resume, halting from outside), plus what only this mode promises: one transaction per ``put``
(event, key and read row commit together or not at all), no read before a write on a known
thread, and every ``CheckpointCreated`` on Kafka exactly once, in order, hash-chained, once the
relay runs.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import (
    BASE_CAPABILITIES,
    EXTENDED_CAPABILITIES,
)
from langgraph.types import Command
from psycopg import sql

from omium.commands import CommandApplications, event_store_env
from omium.commands.relay import OutboxRelay
from omium.integrations.langgraph import AsyncOmiumSaver, OmiumSaver
from omium.kernel.events import verify_chain
from omium.kernel.serde import AvroSerde, default_catalog
from omium.kernel.settings import OmiumSettings
from omium.sdk.client import ConflictError
from tests.commands.relay.fixtures import (  # noqa: F401 - imported to register the fixtures
    relay_factory,
    relay_schema,
    relay_settings,
    topic_reader,
    value_of,
)
from tests.integrations.langgraph.test_graphs import build

pytestmark = pytest.mark.integration

SERDE = AvroSerde(default_catalog())


@pytest.fixture
def embedded_schema(stack: OmiumSettings) -> Iterator[str]:
    """A fresh event store schema (the embedded saver creates its tables), dropped afterwards."""
    schema = f"test_embedded_{uuid.uuid4().hex[:10]}"
    yield schema
    with psycopg.connect(stack.postgres.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def rows(stack: OmiumSettings, schema: str, query: str) -> list[tuple[Any, ...]]:
    """Rows of a query on the schema's tables (``{s}`` is the schema)."""
    with psycopg.connect(stack.postgres.dsn(), autocommit=True) as conn:
        return conn.execute(query.format(s=sql.Identifier(schema).as_string(conn))).fetchall()


def config_of(thread: str, ns: str = "") -> Any:
    """A LangGraph config for a thread's namespace."""
    return {"configurable": {"thread_id": thread, "checkpoint_ns": ns}}


def checkpoint(index: int) -> Any:
    """A small checkpoint (LangGraph's shape)."""
    return {
        "v": 4,
        "id": str(uuid.uuid1()),
        "ts": "2026-01-01T00:00:00+00:00",
        "channel_values": {"step": index},
        "channel_versions": {"step": index + 1},
        "versions_seen": {},
        "updated_channels": None,
    }


@pytest.mark.anyio
async def test_the_embedded_saver_passes_the_conformance_suite(
    stack: OmiumSettings, embedded_schema: str
) -> None:
    @checkpointer_test(name="AsyncOmiumSaver (embedded)")
    async def embedded() -> AsyncIterator[AsyncOmiumSaver]:
        async with AsyncOmiumSaver.from_conn_string(
            stack.postgres.dsn(),
            tenant=f"t-{uuid.uuid4().hex[:12]}",
            event_store_schema=embedded_schema,
        ) as saver:
            yield saver

    report = await validate(embedded)
    report.print_report()
    failures = {name: r.failures for name, r in report.results.items() if r.failures}
    assert failures == {}
    for capability in BASE_CAPABILITIES | EXTENDED_CAPABILITIES:
        result = report.results[capability.value]
        assert result.detected and result.passed, (capability.value, result)


@pytest.mark.anyio
async def test_a_subgraph_interrupt_is_resumed_by_another_embedded_saver(
    stack: OmiumSettings, embedded_schema: str
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    config: RunnableConfig = {"configurable": {"thread_id": "report"}}
    connect: Callable[[], Any] = lambda: AsyncOmiumSaver.from_conn_string(  # noqa: E731
        stack.postgres.dsn(), tenant=tenant, event_store_schema=embedded_schema
    )
    async with connect() as saver:
        first = (
            await build()
            .compile(checkpointer=saver)
            .ainvoke({"topic": "tides", "notes": [], "approved": False}, config)
        )
        assert first["__interrupt__"][0].value["question"] == "publish?"

    async with connect() as saver:  # another process: nothing remembered
        final = await build().compile(checkpointer=saver).ainvoke(Command(resume="yes"), config)
        listed = [t async for t in saver.alist(config)]
    assert final["approved"] is True and final["notes"][-1] == "reviewed: yes"
    executions = {
        r[0]
        for r in rows(
            stack, embedded_schema, "SELECT DISTINCT execution_id FROM {s}.langgraph_checkpoints"
        )
    }
    assert len(executions) == 1 and len(listed) >= 6


def test_halting_the_execution_stops_the_graph_as_in_gateway_mode(
    stack: OmiumSettings, embedded_schema: str
) -> None:
    thread = f"sync-{uuid.uuid4().hex[:8]}"
    config: RunnableConfig = {"configurable": {"thread_id": "h"}}
    with OmiumSaver.from_conn_string(
        stack.postgres.dsn(), tenant=thread, event_store_schema=embedded_schema
    ) as saver:
        graph = build().compile(checkpointer=saver)
        graph.invoke({"topic": "sync", "notes": [], "approved": False}, config)
        transport: Any = saver.client
        (bound,) = rows(stack, embedded_schema, "SELECT execution_id FROM {s}.langgraph_threads")
        transport.apps.executions.halt_execution(thread, bound[0], reason="budget exceeded")

        with pytest.raises(ConflictError) as halted:
            graph.invoke(Command(resume="no"), config)
        assert halted.value.extensions["current_state"] == "halted"
        assert halted.value.slug == "invalid-transition"

        saver.delete_thread("h")
        assert saver.get_tuple(config) is None
        graph.invoke({"topic": "again", "notes": [], "approved": False}, config)
    threads = rows(stack, embedded_schema, "SELECT execution_id FROM {s}.langgraph_threads")
    assert threads and threads[0][0] != bound[0]


def test_a_put_is_one_transaction_and_a_refused_put_leaves_no_row(
    stack: OmiumSettings, embedded_schema: str
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    with OmiumSaver.from_conn_string(
        stack.postgres.dsn(), tenant=tenant, event_store_schema=embedded_schema
    ) as saver:
        config = config_of("one")
        for index in range(3):
            cp = checkpoint(index)
            config = saver.put(config, cp, {"step": index}, cp["channel_versions"])
        counted = "SELECT count(*) FROM {s}.langgraph_checkpoints"
        events = "SELECT count(*) FROM {s}.executions_events WHERE topic LIKE %s"
        with psycopg.connect(stack.postgres.dsn(), autocommit=True) as conn:
            schema = sql.Identifier(embedded_schema).as_string(conn)
            created = conn.execute(events.format(s=schema), ("%CheckpointCreated",)).fetchone()
        assert rows(stack, embedded_schema, counted) == [(3,)]
        assert created == (3,)

        transport: Any = saver.client
        (bound,) = rows(stack, embedded_schema, "SELECT execution_id FROM {s}.langgraph_threads")
        transport.apps.executions.cancel_execution(tenant, bound[0], reason="stop")
        refused = checkpoint(3)
        with pytest.raises(ConflictError):
            saver.put(config, refused, {"step": 3}, refused["channel_versions"])
        assert rows(stack, embedded_schema, counted) == [(3,)]


def test_every_embedded_checkpoint_reaches_kafka_once_in_order_chained(
    relay_settings: OmiumSettings,
    relay_schema: str,
    relay_factory: Callable[..., OutboxRelay],
    topic_reader: Callable[..., list[Any]],
) -> None:
    with OmiumSaver.from_conn_string(
        relay_settings.postgres.dsn(),
        tenant="t-kafka",
        settings=relay_settings,
        event_store_schema=relay_schema,
    ) as saver:
        config = config_of("k")
        for index in range(5):
            cp = checkpoint(index)
            config = saver.put(config, cp, {"step": index}, cp["channel_versions"])
    for _ in range(2):  # a second relay run must publish nothing again
        with relay_factory() as relay:
            relay.run(once=True)

    events = [SERDE.decode(value_of(m)) for m in topic_reader(["executions"])]
    created = [e for e in events if e["event_type"] == "CheckpointCreated"]
    assert len(created) == 5 == len({e["event_id"] for e in created})
    assert [e["aggregate_version"] for e in events] == sorted(
        e["aggregate_version"] for e in events
    )
    verify_chain(events)


def test_the_write_side_sees_embedded_puts_like_gateway_puts(
    stack: OmiumSettings, embedded_schema: str
) -> None:
    with OmiumSaver.from_conn_string(
        stack.postgres.dsn(), tenant="t-view", event_store_schema=embedded_schema
    ) as saver:
        config = config_of("v")
        cp = checkpoint(0)
        saver.put(config, cp, {"step": 0}, cp["channel_versions"])
    env = event_store_env(stack, schema=embedded_schema)
    with CommandApplications.create(env) as apps:
        (bound,) = rows(stack, embedded_schema, "SELECT execution_id FROM {s}.langgraph_threads")
        run = apps.executions.get_execution("t-view", bound[0])
    assert run.state == "running" and [c.position for c in run.checkpoints] == ["after"]
