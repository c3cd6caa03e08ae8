"""Queries of the read models through the client: the answers parse into the SDK's models.

A run is applied straight to the live gateway's PostgreSQL read model (as the projection would
apply it from Kafka), then read back with the typed query methods.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TypedDict

import psycopg
import pytest

from omium.kernel.kafka import ConsumedEvent
from omium.projections.postgres import PostgresProjection, schema_for
from omium.sdk.client import Client, ExecutionSummary, NotFoundError
from tests.projections.helpers import T0, run_of
from tests.sdk.client.fixtures import LiveGateway


class Window(TypedDict):
    """The time range of a stats query."""

    start: datetime
    end: datetime


pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def read_model(live_gateway: LiveGateway) -> Iterator[PostgresProjection]:
    """The live gateway's PostgreSQL read model (dropped after the module)."""
    settings = live_gateway.settings
    schema = schema_for(settings.kafka.topic_prefix)
    projection = PostgresProjection.open(settings.postgres.dsn(), schema=schema)
    yield projection
    projection.close()
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_runs_timelines_and_analytics(
    read_model: PostgresProjection, tenant: str, client_factory: Callable[..., Client]
) -> None:
    workflow = uuid.uuid4()
    runs = [
        run_of(tenant, workflow_id=workflow, steps=[("a", "agents.x", True)]),
        run_of(
            tenant, workflow_id=workflow, steps=[("b", "agents.y", False)], end="ExecutionFailed"
        ),
    ]
    for offset, event in enumerate(e for run in runs for e in run.events):
        read_model.apply(
            ConsumedEvent(
                topic="direct", partition=0, offset=offset, key=None, event=event, raw=b""
            )
        )
    read_model.flush({}, expected={})
    omium = client_factory("viewer")

    page = omium.list_executions(workflow_id=str(workflow), limit=1)
    assert len(page.items) == 1 and isinstance(page.items[0], ExecutionSummary)
    every = list(omium.iter_executions(workflow_id=str(workflow), limit=1))
    assert {run.execution_id for run in every} == {run.aggregate_id for run in runs}
    failed = omium.list_executions(status="failed").items
    assert [run.execution_id for run in failed] == [runs[1].aggregate_id]

    timeline = omium.get_timeline(runs[0].aggregate_id)
    assert [e.event_type for e in timeline.events] == [e["event_type"] for e in runs[0].events]
    assert timeline.execution is not None and timeline.steps[0].step_id == "a"

    window: Window = {"start": T0 - timedelta(hours=1), "end": T0 + timedelta(hours=1)}
    stats = omium.run_stats(bucket="hour", **window)
    assert sum(bucket.runs for bucket in stats.buckets) == 2
    steps = omium.step_stats(bucket="hour", group_by="agent", **window)
    assert {bucket.key for bucket in steps.buckets if bucket.steps} >= {"agents.x"}
    assert omium.list_audit(limit=5).items == []
    with pytest.raises(NotFoundError):
        omium.get_timeline(str(uuid.uuid4()))
