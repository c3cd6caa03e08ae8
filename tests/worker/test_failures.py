"""Failures through the worker and the recovery processor (real stack, in-process parts).

A step that overruns its timeout is failed as ``timeout`` and retried after the workflow's
backoff; a run that spends its LLM-call budget is halted.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from omium.cli._pipeline import Pipeline
from omium.commands import CommandApplications
from omium.commands.executions import ExecutionView
from omium.kernel.kafka import topic_name
from omium.kernel.serde import AvroSerde, default_catalog
from omium.kernel.settings import OmiumSettings
from omium.sdk.providers import ScriptedProvider
from tests.worker.conftest import start_run, wait_for_run

pytestmark = pytest.mark.integration

PARTS = ("relay", "commands", "recovery", "orchestrator", "worker")


def _run_a_step_that_times_out_once(
    settings: OmiumSettings,
    schema: str,
    apps: CommandApplications,
    name: str,
    defaults: dict[str, Any],
) -> tuple[Any, ExecutionView]:
    """Run a one-step workflow whose first attempt overruns its 1 s timeout; the completed run."""
    definition = {
        "name": name,
        "agents": {"slow": {"entrypoint": "tests.worker.agents:slow_first"}},
        "defaults": defaults,
        "steps": [{"id": "slow", "agent": "slow", "timeout_s": 1, "input": {"sleep_s": 3}}],
    }
    with Pipeline(settings, schema=schema, parts=PARTS) as pipeline:
        tenant, run = start_run(apps, definition, {})
        view = wait_for_run(apps, tenant, run, timeout_s=60, check=pipeline.check)
    assert view.state == "completed", view.outcome
    return run, view


def test_a_timed_out_step_is_retried_after_the_backoff(
    worker_settings: OmiumSettings,
    event_schema: str,
    test_apps: CommandApplications,
    redis_log: tuple[redis.Redis, str],
) -> None:
    defaults = {"retry": {"max_attempts": 3, "backoff": {"initial_s": 0.3}}}
    run, view = _run_a_step_that_times_out_once(
        worker_settings, event_schema, test_apps, "timeouts", defaults
    )
    [step] = view.steps
    assert (step.attempts, step.output) == (2, {"attempt": 2})
    # Events of classes eventsourcing builds from the aggregate's methods: attributes unknown.
    events: list[Any] = list(test_apps.executions.repository.event_store.get(run))
    [failed] = [e for e in events if type(e).__name__ == "StepFailed"]
    assert failed.error_type == "timeout" and "timeout of 1s" in failed.error
    started = [e for e in events if type(e).__name__ == "StepStarted"]
    assert (started[1].timestamp - failed.timestamp).total_seconds() >= 0.3  # the backoff


def test_a_run_that_spends_its_call_budget_is_halted(
    worker_settings: OmiumSettings, event_schema: str, test_apps: CommandApplications
) -> None:
    definition = {
        "name": "budget",
        "agents": {"chatty": {"entrypoint": "tests.worker.agents:chatty", "model": "gpt-4o-mini"}},
        "policies": {"budget": {"max_llm_calls": 2, "on_exceed": "halt"}},
        "steps": [
            {"id": "ask", "agent": "chatty", "input": {"calls": 2}},
            {"id": "ask_more", "agent": "chatty", "input": {"calls": 1}},
        ],
    }
    providers = {"scripted": ScriptedProvider({"rules": [], "default": "fine"})}
    with Pipeline(worker_settings, schema=event_schema, parts=PARTS, providers=providers) as p:
        tenant, run = start_run(test_apps, definition, {})
        view = wait_for_run(test_apps, tenant, run, timeout_s=60, check=p.check)
    assert view.state == "halted", view.outcome
    assert view.outcome["policy_id"] == "budget"
    assert "max_llm_calls used 2 of 2" in view.outcome["reason"]
    steps = {s.step_id: (s.status, s.attempts) for s in view.steps}
    assert steps == {"ask": ("completed", 1), "ask_more": ("failed", 1)}


def _failures_on_kafka(settings: OmiumSettings, execution_id: str) -> list[dict[str, Any]]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"reader-{uuid.uuid4()}",
            "isolation.level": "read_committed",
        }
    )
    topic = topic_name(settings.kafka, "failures")
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    serde = AvroSerde(default_catalog())
    found: list[dict[str, Any]] = []
    try:
        for message in consumer.consume(1000, 3.0):
            if message.error() is None:
                event = serde.decode(message.value() or b"")
                payload = event["payload"]
                if event["event_type"] == "FailureDetected" and (
                    str(payload["execution_id"]) == execution_id
                ):
                    found.append(event)
    finally:
        consumer.close()
    return found


def test_a_failure_names_the_checkpoint_its_attempt_started_from(
    worker_settings: OmiumSettings,
    event_schema: str,
    test_apps: CommandApplications,
    redis_log: tuple[redis.Redis, str],
) -> None:
    # Recovery reads failures and checkpoints from two topics with no order between them.
    defaults = {
        "checkpoint": {"before": True, "after": True},
        "retry": {"max_attempts": 3, "backoff": {"initial_s": 0.1}},
    }
    run, view = _run_a_step_that_times_out_once(
        worker_settings, event_schema, test_apps, "restore-point", defaults
    )
    before = [c for c in view.checkpoints if c.position == "before"]
    [failure] = _failures_on_kafka(worker_settings, str(run))
    assert failure["payload"]["details"]["checkpoint_id"] == before[0].checkpoint_id
