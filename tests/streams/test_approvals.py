"""Approval deadlines on the real processors: relay, command worker and the approvals processor.

The run is driven through the command applications (as a client would); the processors run in
threads on this test's own topics and event store schema.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from psycopg import sql

from omium.cli._pipeline import Pipeline
from omium.commands import CommandApplications, InvalidCommandError, event_store_env
from omium.commands.executions import ExecutionView
from omium.kernel.kafka import consumer_config, ensure_topics
from omium.kernel.settings import OmiumSettings
from omium.streams.approvals import APPROVALS
from omium.streams.base import ProcessorConfig

pytestmark = pytest.mark.integration

PARTS = ("relay", "commands", "approvals")
TENANT = "acme"


@pytest.fixture
def approval_settings(stack: OmiumSettings) -> OmiumSettings:
    """Settings on topics of this test's own."""
    kafka = stack.kafka.model_copy(
        update={"topic_prefix": f"ta{uuid.uuid4().hex[:10]}", "partitions": 2}
    )
    ensure_topics(kafka)
    return stack.model_copy(update={"kafka": kafka})


@pytest.fixture
def schema(stack: OmiumSettings) -> Iterator[str]:
    """A fresh event store schema, dropped afterwards."""
    name = f"test_appr_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(stack.postgres.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def apps(approval_settings: OmiumSettings, schema: str) -> Iterator[CommandApplications]:
    """The command applications the test writes with."""
    env = event_store_env(approval_settings, schema=schema, pool_size=1, max_overflow=4)
    with CommandApplications.create(env) as created:
        yield created


def waiting_run(apps: CommandApplications, *, deadline_s: float, default_action: str) -> UUID:
    """A run whose step ``gated`` waits for an approval due in ``deadline_s``; ``free`` runs."""
    workflow = apps.workflows.register_workflow(
        TENANT,
        name=f"w-{uuid.uuid4().hex[:6]}",
        definition={"steps": [{"id": "free", "agent": "a"}, {"id": "gated", "agent": "b"}]},
    ).aggregate_id
    run = apps.executions.start_execution(TENANT, workflow_id=workflow, workflow_version=1)
    ex, rid = apps.executions, run.aggregate_id
    ex.schedule_step(TENANT, rid, step_id="gated")
    ex.request_human_approval(
        TENANT,
        rid,
        step_id="gated",
        deadline=datetime.now(UTC) + timedelta(seconds=deadline_s),
        default_action=default_action,
        prompt="Send it?",
    )
    return rid


def changelog_entries(approval_settings: OmiumSettings) -> int:
    """Committed entries in the approvals processor's changelog."""
    config = ProcessorConfig.from_settings("approvals", approval_settings)
    topic = config.internal_topic(f"{APPROVALS}-changelog")
    consumer = Consumer(
        consumer_config(
            approval_settings.kafka,
            f"probe-{uuid.uuid4().hex[:8]}",
            **{"auto.offset.reset": "earliest"},
        )
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return 0
        count = 0
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            count += high - low
        return count
    finally:
        consumer.close()


def wait_for_decision(
    apps: CommandApplications, run: UUID, *, timeout_s: float = 40.0, pipeline: Any = None
) -> ExecutionView:
    deadline = time.monotonic() + timeout_s
    while True:
        if pipeline is not None:
            pipeline.check()
        view = apps.executions.get_execution(TENANT, run)
        if all(a.status != "pending" for a in view.approvals):
            return view
        assert time.monotonic() < deadline, view.approvals
        time.sleep(0.2)


def test_an_overdue_approval_gets_its_default_while_other_steps_go_on(
    approval_settings: OmiumSettings, schema: str, apps: CommandApplications, tmp_path: Path
) -> None:
    approve = waiting_run(apps, deadline_s=3, default_action="approve")
    reject = waiting_run(apps, deadline_s=3, default_action="reject")
    decided_in_time = waiting_run(apps, deadline_s=3, default_action="reject")
    with Pipeline(approval_settings, schema=schema, parts=PARTS, state_dir=tmp_path) as pipeline:
        # While the approval waits, the run's other step runs (one branch's wait blocks nothing).
        ex = apps.executions
        ex.schedule_step(TENANT, approve, step_id="free")
        ex.start_step(TENANT, approve, step_id="free")
        ex.complete_step(TENANT, approve, step_id="free", output={"done": True})
        ex.grant_approval(TENANT, decided_in_time, step_id="gated", decided_by="bob")

        granted = wait_for_decision(apps, approve, pipeline=pipeline)
        rejected = wait_for_decision(apps, reject, pipeline=pipeline)
        time.sleep(3)  # past the third run's deadline too: its human decision stands
        human = apps.executions.get_execution(TENANT, decided_in_time)

    (g,) = granted.approvals
    assert (g.status, g.decided_by, g.by_default) == ("granted", "system:deadline", True)
    assert {s.step_id: s.status for s in granted.steps} == {
        "free": "completed",
        "gated": "scheduled",
    }
    assert granted.state == "running"  # the gated step may start now
    (r,) = rejected.approvals
    assert (r.status, r.decided_by, r.by_default) == ("rejected", "system:deadline", True)
    (h,) = human.approvals
    assert (h.status, h.decided_by, h.by_default) == ("granted", "bob", False)


def test_a_decision_after_the_deadline_is_refused_with_the_reason() -> None:
    from omium.commands.executions import Execution

    run = Execution.start(tenant_id=TENANT, workflow_id=uuid.uuid4(), workflow_version=1)
    run.schedule_step("gated")
    asked = datetime.now(UTC)
    deadline = asked + timedelta(minutes=5)
    run.request_human_approval(
        "gated", deadline=deadline, default_action="reject", prompt=None, now=asked
    )
    for decide in (run.grant_approval, run.reject_approval):
        with pytest.raises(InvalidCommandError) as refused:
            decide("gated", decided_by="bob", now=deadline)
        assert refused.value.reason == "approval_deadline_passed"
        assert refused.value.details == {
            "deadline": deadline.isoformat(),
            "default_action": "reject",
        }
        assert "its default action (reject) applies" in str(refused.value)
    run.grant_approval("gated", decided_by="bob", now=deadline - timedelta(seconds=1))


def test_the_deadline_survives_a_restart_of_the_processors(
    approval_settings: OmiumSettings, schema: str, apps: CommandApplications, tmp_path: Path
) -> None:
    run = waiting_run(apps, deadline_s=6, default_action="approve")
    with Pipeline(
        approval_settings, schema=schema, parts=PARTS, state_dir=tmp_path / "first"
    ) as pipeline:
        # Wait until the processor has the approval in its (changelogged) state.
        deadline = time.monotonic() + 30
        while not changelog_entries(approval_settings):
            pipeline.check()
            assert time.monotonic() < deadline, "the request never reached the processor"
            time.sleep(0.2)
    assert apps.executions.get_execution(TENANT, run).approvals[0].status == "pending"
    time.sleep(4)  # the deadline passes while no processor runs
    assert apps.executions.get_execution(TENANT, run).approvals[0].status == "pending"

    # A new instance with empty local state: the deadline comes back from the changelog.
    with Pipeline(
        approval_settings, schema=schema, parts=PARTS, state_dir=tmp_path / "second"
    ) as pipeline:
        view = wait_for_decision(apps, run, pipeline=pipeline)
    (approval,) = view.approvals
    assert (approval.status, approval.decided_by) == ("granted", "system:deadline")
