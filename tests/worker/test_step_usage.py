"""A step's LLM usage reaches its ``StepCompleted`` and the PostgreSQL read model (issue 15).

The worker adds up its step's LLM calls (tokens in and out, cost, the model) and records them on
the step's completion, on the orchestrated path and the pipelined one alike; the run's budget is
on ``ExecutionStarted``. Real stack: the relay, command worker, orchestrator and worker in this
process, the PostgreSQL projection behind them; the spans and events are read back from Kafka.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from omium.cli._pipeline import Pipeline
from omium.commands import CommandApplications
from omium.kernel.kafka import topic_name
from omium.kernel.serde import AvroSerde, default_catalog
from omium.kernel.settings import OmiumSettings
from omium.projections.postgres import schema_for
from omium.sdk.providers import ScriptedProvider
from omium.sdk.workflow import parse_workflow_dict
from tests.worker.test_pipeline import read_topic

pytestmark = pytest.mark.integration

PARTS = ("relay", "commands", "orchestrator", "worker")
CHATTY = {"entrypoint": "tests.worker.agents:chatty", "model": "gpt-4o-mini"}


@pytest.fixture
def read_model(worker_settings: OmiumSettings) -> Iterator[str]:
    """The PostgreSQL read model schema of this test's topic prefix, dropped afterwards."""
    schema = schema_for(worker_settings.kafka.topic_prefix)
    yield schema
    with psycopg.connect(worker_settings.postgres.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def read_model_rows(
    settings: OmiumSettings, schema: str, run: Any, steps: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run's row and its completed steps' rows, once the projection has them all."""
    deadline = time.monotonic() + 60
    run_query = sql.SQL("SELECT * FROM {}.executions WHERE execution_id = %s").format(
        sql.Identifier(schema)
    )
    step_query = sql.SQL(
        "SELECT * FROM {}.steps WHERE execution_id = %s AND status = 'completed' ORDER BY step_id"
    ).format(sql.Identifier(schema))
    while True:
        try:
            with psycopg.connect(settings.postgres.dsn(), row_factory=dict_row) as conn:
                row = conn.execute(run_query, (str(run),)).fetchone()
                rows = conn.execute(step_query, (str(run),)).fetchall()
            if row is not None and row["status"] == "completed" and len(rows) == steps:
                return row, rows
        except psycopg.errors.UndefinedTable:
            pass  # the projection has not migrated its schema yet
        assert time.monotonic() < deadline, "the read model did not catch up"
        time.sleep(0.3)


def test_step_completed_carries_the_sum_of_its_llm_calls(
    worker_settings: OmiumSettings,
    event_schema: str,
    test_apps: CommandApplications,
    read_model: str,
) -> None:
    definition = {
        "name": "usage",
        "agents": {"chatty": CHATTY},
        "policies": {"budget": {"max_tokens": 50_000, "max_cost_usd": 2.5}},
        "steps": [
            {"id": "ask", "agent": "chatty", "input": {"calls": 3}},
            {"id": "quiet", "agent": "chatty", "input": {"calls": 0}},
            {"id": "ask_more", "agent": "chatty", "input": {"calls": 2}},
        ],
    }
    workflow = parse_workflow_dict(definition)
    providers = {"scripted": ScriptedProvider({"rules": [], "default": "a fine answer " * 20})}
    with Pipeline(
        worker_settings,
        schema=event_schema,
        parts=PARTS,
        providers=providers,
        projections=("postgres",),
    ) as pipeline:
        registered = test_apps.workflows.register_workflow(
            "acme", name=workflow.name, definition=workflow.to_definition()
        )
        run = test_apps.executions.start_execution(
            "acme",
            workflow_id=registered.aggregate_id,
            workflow_version=1,
            **workflow.run_budget(),
        ).aggregate_id
        deadline = time.monotonic() + 90
        while test_apps.executions.get_execution("acme", run).state != "completed":
            pipeline.check()
            assert time.monotonic() < deadline, "the run did not complete"
            time.sleep(0.2)
        run_row, step_rows = read_model_rows(worker_settings, read_model, run, steps=3)

    serde = AvroSerde(default_catalog())

    def of_run(raw: bytes) -> dict[str, Any] | None:
        event = serde.decode(raw)
        if event["event_type"] == "SpanRecorded":
            return event if str(event["payload"].get("execution_id")) == str(run) else None
        return event if event["aggregate_id"] == str(run) else None

    events = read_topic(worker_settings, topic_name(worker_settings.kafka, "executions"), of_run, 9)
    calls = [
        e["payload"]
        for e in read_topic(worker_settings, topic_name(worker_settings.kafka, "traces"), of_run, 5)
        if e["payload"]["kind"] == "llm_call"
    ]
    assert len(calls) == 5
    # Made for the run: the scripted provider numbers them per run.
    assert [c.execution_id for c in providers["scripted"].calls] == [str(run)] * 5
    completed = {
        e["payload"]["step_id"]: e["payload"] for e in events if e["event_type"] == "StepCompleted"
    }
    assert set(completed) == {"ask", "quiet", "ask_more"}
    for step, payload in completed.items():
        mine = [c for c in calls if c["step_id"] == step]
        assert payload["tokens_in"] == sum(c["tokens_in"] for c in mine), step
        assert payload["tokens_out"] == sum(c["tokens_out"] for c in mine), step
        assert payload["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in mine)), step
        assert payload["model"] == ("gpt-4o-mini" if mine else None), step
    assert completed["ask"]["tokens_out"] > 0 and completed["ask"]["cost_usd"] > 0
    assert (completed["quiet"]["tokens_in"], completed["quiet"]["cost_usd"]) == (0, 0.0)
    [started] = [e["payload"] for e in events if e["event_type"] == "ExecutionStarted"]
    assert (started["max_tokens"], started["max_cost_usd"]) == (50_000, 2.5)

    # The read model: per step, and the run's totals and budget.
    by_step = {r["step_id"]: r for r in step_rows}
    for step, payload in completed.items():
        row = by_step[step]
        assert (row["tokens_in"], row["tokens_out"]) == (
            payload["tokens_in"],
            payload["tokens_out"],
        )
        assert row["cost_usd"] == pytest.approx(payload["cost_usd"])
    tokens = sum(c["tokens_in"] + c["tokens_out"] for c in calls)
    assert run_row["total_tokens"] == tokens > 0
    assert run_row["total_cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in calls))
    assert (run_row["max_tokens"], run_row["max_cost_usd"]) == (50_000, 2.5)


def test_a_run_without_budget_records_none(
    worker_settings: OmiumSettings, test_apps: CommandApplications
) -> None:
    workflow = parse_workflow_dict(
        {"name": "free", "agents": {"c": CHATTY}, "steps": [{"id": "a", "agent": "c"}]}
    )
    assert workflow.run_budget() == {"max_cost_usd": None, "max_tokens": None}
    run = test_apps.executions.start_execution(
        "acme", workflow_id=uuid.uuid4(), workflow_version=1, **workflow.run_budget()
    ).aggregate_id
    # An event of a class eventsourcing builds from Execution.__init__: attributes unknown.
    events: list[Any] = list(test_apps.executions.repository.event_store.get(run))
    [started] = events
    assert (started.max_cost_usd, started.max_tokens) == (None, None)
