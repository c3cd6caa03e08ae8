"""Recovery suggestions in the PostgreSQL read model (real Kafka and PostgreSQL): each is a row
of its run's timeline, without the bulky diagnosis JSON."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from omium.kernel.serde import AvroSerde
from omium.kernel.settings import KafkaSettings
from tests.projections.helpers import publish, run_of
from tests.projections.test_postgres import run_until_offsets

pytestmark = pytest.mark.integration

Factory = Callable[..., Any]


def test_suggestions_are_rows_of_the_runs_timeline(
    kafka: KafkaSettings,
    serde: AvroSerde,
    pg_projection_factory: Factory,
    runner_factory: Factory,
    pg: psycopg.Connection,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    run = run_of(tenant, end=None)
    run.add("RecoverySuggested", suggestion_id="s1", step_id="research")
    run.add("RecoverySuggestionRejected", suggestion_id="s1", decided_by="bob")
    run.add("RecoverySuggested", suggestion_id="s2", step_id="research")
    run.add("RecoverySuggestionApproved", suggestion_id="s2", decided_by="alice")
    publish(kafka, serde, run.events)
    projection = pg_projection_factory(kafka)
    run_until_offsets(runner_factory(projection, kafka), projection, len(run.events))

    rows = pg.execute(
        f"SELECT event_type, summary FROM {projection.schema}.execution_events "
        "WHERE tenant_id = %s AND event_type LIKE 'RecoverySugg%%' ORDER BY aggregate_version",
        (tenant,),
    ).fetchall()

    assert [r[0] for r in rows] == [
        "RecoverySuggested",
        "RecoverySuggestionRejected",
        "RecoverySuggested",
        "RecoverySuggestionApproved",
    ]
    suggested = rows[0][1]["payload"]
    assert suggested["suggestion_id"] == "s1" and "diagnosis_json" not in suggested
    assert "probable_cause" in suggested and "fix" in suggested
    version = pg.execute(
        f"SELECT last_event_version FROM {projection.schema}.executions WHERE tenant_id = %s",
        (tenant,),
    ).fetchone()
    assert version == (run.events[-1]["aggregate_version"],)
