"""A checkpoint pruned by retention in the PostgreSQL read model: marked pruned, state dropped,
and its download answers 410 ``checkpoint-pruned`` (never ``checkpoint-corrupt``)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest

from omium.projections.postgres import schema_for
from tests.gateway.read.conftest import ReadModel
from tests.projections.helpers import Chain

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def created(run: Chain, checkpoint_id: str, state: bytes) -> None:
    run.add(
        "CheckpointCreated",
        checkpoint_id=checkpoint_id,
        storage="inline",
        inline_state=state,
        checksum_sha256=hashlib.sha256(state).hexdigest(),
        size_bytes=len(state),
    )


async def test_a_pruned_checkpoint_is_gone_not_corrupt(
    read_model: ReadModel,
    read_client_factory: Callable[[], httpx.AsyncClient],
    auth_factory: Callable[..., dict[str, str]],
    tenant_factory: Callable[[], str],
) -> None:
    tenant = tenant_factory()
    run = Chain(tenant)
    run.add("ExecutionStarted")
    created(run, "cp-1", b'{"draft": 1}')
    created(run, "cp-2", b'{"draft": 2}')
    pruned: dict[str, Any] = {
        "checkpoint_id": "cp-1",
        "step_id": "draft",
        "checksum_sha256": hashlib.sha256(b'{"draft": 1}').hexdigest(),
        "size_bytes": 12,
        "storage": "inline",
        "object_key": None,
    }
    run.add("CheckpointsPruned", checkpoints=[pruned], keep_last=1, max_age_s=None)
    read_model.project(run.events)
    client, auth = read_client_factory(), auth_factory(tenant=tenant)
    base = f"/api/v1/executions/{run.aggregate_id}"

    gone = await client.get(f"{base}/checkpoints/cp-1/state", headers=auth)
    kept = await client.get(f"{base}/checkpoints/cp-2/state", headers=auth)
    timeline = await client.get(f"{base}/timeline", headers=auth)

    assert gone.status_code == 410, gone.text
    problem = gone.json()
    assert problem["type"].endswith("checkpoint-pruned")
    assert problem["checkpoint_id"] == "cp-1" and problem["reason"] == "checkpoint_pruned"
    assert problem["checksum"] == pruned["checksum_sha256"]
    assert kept.status_code == 200 and kept.content == b'{"draft": 2}'
    assert timeline.status_code == 200
    assert "CheckpointsPruned" in [e["event_type"] for e in timeline.json()["events"]]
    schema = schema_for(read_model.settings.kafka.topic_prefix)
    with psycopg.connect(read_model.settings.postgres.dsn()) as conn:
        rows = conn.execute(
            f"SELECT checkpoint_id, pruned_at IS NOT NULL, inline_state IS NULL "
            f"FROM {schema}.checkpoints WHERE tenant_id = %s ORDER BY checkpoint_id",
            (tenant,),
        ).fetchall()
    assert rows == [("cp-1", True, True), ("cp-2", False, False)]
