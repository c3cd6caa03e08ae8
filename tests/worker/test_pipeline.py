"""Steps without round trips on the real stack: a worker goes on to a run's next step in the same
save as its predecessor's completion, and every guarantee of the orchestrated path holds.

- every event of a pipelined run reaches Kafka once, in order, hash-chained, and the orchestrator
  hands out one work item (the first step's) for the whole run;
- a rollback, halt or cancel from outside while a pipelined step runs makes the worker's save
  conflict, and the run follows the outside decision;
- a deny-mode policy on a step's output halts the run in the completion's own save, before the
  next step starts (the policy processor still records the violation);
- kill -9 of the worker in the middle of a chain: another worker takes the running step over and
  its effect is applied once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from psycopg import sql
from structlog.testing import capture_logs

from omium.cli._pipeline import Pipeline
from omium.commands import CommandApplications
from omium.kernel.events import verify_chain
from omium.kernel.kafka import topic_name
from omium.kernel.serde import AvroSerde, default_catalog
from omium.kernel.settings import OmiumSettings
from omium.worker import WorkItem, work_topic
from tests.worker.conftest import get_text, start_run, text, wait_for_run
from tests.worker.test_takeover import (  # noqa: F401 - the fixture is used by name
    owns_partitions,
    three_steps,
    wait_until,
    worker_processes,
)

pytestmark = pytest.mark.integration

SAY = {"entrypoint": "tests.worker.agents:say"}
BOTH = {"checkpoint": {"before": True, "after": True}, "timeout_s": 60}
# An after checkpoint only: a rollback target taken before the next step existed.
AFTER = {"checkpoint": {"before": False, "after": True}, "timeout_s": 60}


def chain(
    name: str, sleeps: dict[str, float], defaults: dict[str, Any], **say: str
) -> dict[str, Any]:
    return {
        "name": name,
        "agents": {"talker": SAY},
        "defaults": defaults,
        "steps": [
            {"id": step, "agent": "talker", "input": {"sleep_s": s, "say": say.get(step, "ok")}}
            for step, s in sleeps.items()
        ],
    }


# ---------------------------------------------------------------------------- reading back


def read_topic(
    settings: OmiumSettings, topic: str, keep: Callable[[bytes], Any | None], count: int
) -> list[Any]:
    """Everything ``keep`` keeps from a topic, read from its start until ``count`` are found."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"reader-{uuid.uuid4()}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    found: list[Any] = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            for message in consumer.consume(500, 0.5):
                if message.error() is None:
                    kept = keep(message.value() or b"")
                    if kept is not None:
                        found.append(kept)
            if len(found) >= count:
                # Whatever else is there (a duplicate would be) comes within another poll.
                for message in consumer.consume(500, 1.0):
                    if message.error() is None:
                        kept = keep(message.value() or b"")
                        if kept is not None:
                            found.append(kept)
                return found
    finally:
        consumer.close()
    return found


def run_events_on_kafka(settings: OmiumSettings, run: Any, count: int) -> list[dict[str, Any]]:
    serde = AvroSerde(default_catalog())

    def keep(raw: bytes) -> dict[str, Any] | None:
        event = serde.decode(raw)
        return event if str(event["aggregate_id"]) == str(run) else None

    return read_topic(settings, topic_name(settings.kafka, "executions"), keep, count)


def work_items(settings: OmiumSettings, run: Any, count: int = 1) -> list[WorkItem]:
    def keep(raw: bytes) -> WorkItem | None:
        item = WorkItem.from_bytes(raw)
        return item if item.execution_id == str(run) else None

    return read_topic(settings, work_topic(settings.kafka), keep, count)


def stored(apps: CommandApplications, run: Any) -> list[Any]:
    return list(apps.executions.repository.event_store.get(run))


def transactions(settings: OmiumSettings, schema: str, run: Any) -> dict[int, str]:
    """Event version -> the PostgreSQL transaction that wrote it."""
    query = sql.SQL(
        "SELECT originator_version, xmin::text FROM {}.executions_events WHERE originator_id = %s"
    ).format(sql.Identifier(schema))
    with psycopg.connect(settings.postgres.dsn()) as conn:
        return dict(conn.execute(query, (run,)).fetchall())


def saves(apps: CommandApplications, settings: OmiumSettings, schema: str, run: Any) -> list[str]:
    """The run's events grouped by the transaction that wrote them: ``"Kind(step) ..."``."""
    xmin = transactions(settings, schema, run)
    groups: list[tuple[str, list[str]]] = []
    for event in stored(apps, run):
        label = type(event).__name__
        step = getattr(event, "step_id", None)
        label += f"({step})" if step else ""
        tx = xmin[event.originator_version]
        if groups and groups[-1][0] == tx:
            groups[-1][1].append(label)
        else:
            groups.append((tx, [label]))
    return [" ".join(labels) for _, labels in groups]


def started(client: redis.Redis, key: str, step: str) -> bool:
    return any(text(entry).startswith(f"start {step} ") for entry in client.lrange(key, 0, -1))


# ---------------------------------------------------------------------------- the tests


def test_a_pipelined_run_reaches_kafka_once_in_order_and_chained(
    worker_settings: OmiumSettings,
    event_schema: str,
    test_apps: CommandApplications,
    redis_log: tuple[redis.Redis, str],
) -> None:
    _, key = redis_log
    definition = chain("pipelined", dict.fromkeys(("s1", "s2", "s3", "s4"), 0.0), BOTH)
    parts = ("relay", "orchestrator", "worker")
    with Pipeline(worker_settings, schema=event_schema, parts=parts) as pipeline:
        tenant, run = start_run(test_apps, definition, {"log_key": key})
        view = wait_for_run(test_apps, tenant, run, timeout_s=60, check=pipeline.check)
        history = stored(test_apps, run)
        on_kafka = run_events_on_kafka(worker_settings, run, len(history))

    assert view.state == "completed", view.outcome
    assert {s.step_id: s.attempts for s in view.steps} == dict.fromkeys(("s1", "s2", "s3", "s4"), 1)
    # Each step after the first went on in its predecessor's save.
    grouped = saves(test_apps, worker_settings, event_schema, run)
    for before, after in (("s1", "s2"), ("s2", "s3"), ("s3", "s4")):
        assert (
            f"StepCompleted({before}) CheckpointCreated({before}) StepScheduled({after}) "
            f"StepStarted({after}) CheckpointCreated({after})"
        ) in grouped, "\n".join(grouped)
    # Every stored event on Kafka exactly once, in order, with a valid hash chain.
    assert [e["aggregate_version"] for e in on_kafka] == [e.originator_version for e in history]
    assert [e["event_type"] for e in on_kafka] == [type(e).__name__ for e in history]
    assert verify_chain(on_kafka).events == len(history)
    # One work item for the whole run: the first step's. Nothing pipelined was dispatched.
    assert [(i.step_id, i.reason) for i in work_items(worker_settings, run)] == [
        ("s1", "scheduled")
    ]


@pytest.mark.parametrize("decision", ["halt", "cancel", "rollback"])
def test_an_outside_decision_mid_chain_makes_the_save_conflict_and_wins(
    decision: str,
    worker_settings: OmiumSettings,
    event_schema: str,
    test_apps: CommandApplications,
    redis_log: tuple[redis.Redis, str],
) -> None:
    client, key = redis_log
    definition = chain(f"outside-{decision}", {"a": 0.0, "b": 2.0, "c": 0.0}, AFTER)
    parts = ("relay", "orchestrator", "worker")
    with (
        capture_logs() as logged,
        Pipeline(worker_settings, schema=event_schema, parts=parts) as pipeline,
    ):

        def conflicted() -> list[tuple[str, str]]:
            return [
                (e["execution_id"], e["step_id"])
                for e in list(logged)
                if e["event"] == "pipeline.save_conflicted"
            ]

        tenant, run = start_run(test_apps, definition, {"log_key": key})
        wait_until(lambda: started(client, key, "b"), 60, "b to start")
        executions = test_apps.executions
        if decision == "halt":
            executions.halt_execution(tenant, run, reason="operator says stop")
        elif decision == "cancel":
            executions.cancel_execution(tenant, run, reason="not needed", requested_by="op")
        else:
            [after_a] = [c for c in executions.get_execution(tenant, run).checkpoints]
            executions.roll_back_to_checkpoint(tenant, run, checkpoint_id=after_a.checkpoint_id)
        if decision == "rollback":
            view = wait_for_run(test_apps, tenant, run, timeout_s=60, check=pipeline.check)
        else:
            # Let b's first attempt finish and try to go on.
            wait_until(conflicted, 30, "the conflict")
            time.sleep(1.0)
            view = executions.get_execution(tenant, run)

    assert (str(run), "b") in conflicted(), logged
    names = [type(e).__name__ for e in stored(test_apps, run)]
    steps = {s.step_id: (s.status, s.attempts) for s in view.steps}
    if decision == "rollback":
        assert view.state == "completed", view.outcome
        # b's first attempt was dropped; the run resumed from a's checkpoint.
        assert steps == {"a": ("completed", 1), "b": ("completed", 2), "c": ("completed", 1)}
        assert names.count("ExecutionRolledBack") == 1
        assert names.count("StepCompleted") == 3
    else:
        ended = {"halt": "halted", "cancel": "cancelled"}[decision]
        assert view.state == ended, view.outcome
        assert steps == {"a": ("completed", 1), "b": ("running", 1)}  # c never started
        assert names[-1] in ("ExecutionHalted", "ExecutionCancelled")  # nothing after it


NO_SECRETS = """package omium.nosecret
deny contains msg if {
  contains(input.output, "secret")
  msg := sprintf("step %s leaks a secret", [input.step])
}
"""


def test_a_deny_policy_halts_a_pipelined_run_before_the_denied_step_starts(
    worker_settings: OmiumSettings,
    event_schema: str,
    test_apps: CommandApplications,
    redis_log: tuple[redis.Redis, str],
) -> None:
    client, key = redis_log
    test_apps.policies.publish_policy("acme", name="nosecret", module=NO_SECRETS, mode="deny")
    definition = chain(
        "deny", {"a": 0.3, "b": 0.0, "c": 0.0}, AFTER, b="the secret is 42", c="never said"
    )
    serde = AvroSerde(default_catalog())
    parts = ("relay", "commands", "policy", "orchestrator", "worker")
    with Pipeline(worker_settings, schema=event_schema, parts=parts) as pipeline:
        # The policy is on Kafka (so every reader of the policies topic gets it) before the run.
        policies = topic_name(worker_settings.kafka, "policies")
        read_topic(worker_settings, policies, lambda raw: serde.decode(raw), 1)
        tenant, run = start_run(test_apps, definition, {"log_key": key})
        view = wait_for_run(test_apps, tenant, run, timeout_s=60, check=pipeline.check)

        def violation(raw: bytes) -> dict[str, Any] | None:
            event = serde.decode(raw)
            payload = event["payload"]
            relevant = event["event_type"] == "PolicyViolated"
            return payload if relevant and str(payload["execution_id"]) == str(run) else None

        # The policy processor stays the auditor of record: it records the violation.
        violations = read_topic(worker_settings, policies, violation, 1)

    assert view.state == "halted", view.outcome
    assert view.outcome["policy_id"] == "nosecret"
    assert view.outcome["reason"] == "nosecret v1: step b leaks a secret"
    assert {s.step_id: s.status for s in view.steps} == {"a": "completed", "b": "completed"}
    assert not started(client, key, "c")
    grouped = saves(test_apps, worker_settings, event_schema, run)
    assert "StepCompleted(b) CheckpointCreated(b) ExecutionHalted" in grouped, grouped
    assert [(v["step_id"], v["mode"]) for v in violations] == [("b", "deny")]


def test_a_killed_worker_mid_chain_is_taken_over_and_the_effect_applied_once(
    worker_settings: OmiumSettings,
    event_schema: str,
    test_apps: CommandApplications,
    redis_log: tuple[redis.Redis, str],
    worker_processes: Callable[[str], subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    client, key = redis_log
    workers = {name: worker_processes(name) for name in ("w1", "w2")}
    for name in workers:
        wait_until(partial(owns_partitions, tmp_path / f"{name}.log"), 60, f"{name} to join")
    with Pipeline(worker_settings, schema=event_schema, parts=("relay", "orchestrator")) as p:
        tenant, run = start_run(test_apps, three_steps(), {"log_key": key})
        claim = f"{worker_settings.kafka.topic_prefix}:worker:claim:{run}:long"
        holder = wait_until(lambda: get_text(client, claim), 60, "a worker to claim the long step")
        wait_until(lambda: client.get(f"{key}:applied:long"), 30, "the long step's effect")
        victim = workers[holder]
        os.kill(victim.pid, signal.SIGKILL)  # mid-chain: prepare went on to long in one save
        victim.wait(10)
        view = wait_for_run(test_apps, tenant, run, timeout_s=90, check=p.check)
        items = work_items(worker_settings, run, 2)

    logs = "\n".join((tmp_path / f"{name}.log").read_text()[-3000:] for name in workers)
    assert view.state == "completed", view.outcome
    assert {s.step_id: s.attempts for s in view.steps} == {"prepare": 1, "long": 2, "finish": 1}
    for step in ("prepare", "long", "finish"):
        assert client.get(f"{key}:applied:{step}") == b"1", f"{step}'s effect applied twice"
    grouped = saves(test_apps, worker_settings, event_schema, run)
    pipelined = "StepCompleted(prepare) CheckpointCreated(prepare) StepScheduled(long)"
    assert any(save.startswith(pipelined) for save in grouped), grouped
    lost = [e for e in stored(test_apps, run) if type(e).__name__ == "StepFailed"]
    assert [(e.step_id, e.error_type) for e in lost] == [("long", "worker_lost")], logs
    # Dispatched: the first step, and the long step scheduled again by the takeover; finish
    # went on from long's second attempt without a work item.
    assert [(i.step_id, i.reason) for i in items] == [
        ("prepare", "scheduled"),
        ("long", "scheduled"),
    ], logs


def test_a_deferred_claim_release_goes_with_the_next_claim(stack: OmiumSettings) -> None:
    from omium.worker import Heartbeats

    client = redis.Redis.from_url(stack.redis.url)
    beats = Heartbeats(client, prefix=f"t{uuid.uuid4().hex[:8]}", worker_id="w1", ttl_s=5)
    try:
        assert beats.claim("run", "a")
        beats.defer_release("run", "a")
        assert beats.holder("run", "a") == "w1"  # until the next call to Redis
        assert beats.claim("run", "b")
        assert beats.holder("run", "a") is None and beats.holder("run", "b") == "w1"
        client.set(beats.key("run", "c"), "w2")  # another worker's claim
        assert not beats.claim("run", "c")
        beats.release("run", "c")  # not ours: untouched
        assert beats.holder("run", "c") == "w2"
        beats.release("run", "b")
        beats.release("run", "b")  # a second time: no call, no effect
        assert beats.holder("run", "b") is None
    finally:
        for key in client.scan_iter(f"{beats.key('run', '')}*"):
            client.delete(key)
