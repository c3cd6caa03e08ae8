"""Read routes over the PostgreSQL read model: filters, pagination, tenant isolation."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from omium.projections import ReadStores
from tests.gateway.read.conftest import ReadModel
from tests.projections.helpers import T0, Chain, run_of, single

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

Auth = Callable[..., dict[str, str]]
ClientFactory = Callable[[], httpx.AsyncClient]


async def get(
    client: httpx.AsyncClient, auth: dict[str, str], path: str, **params: Any
) -> httpx.Response:
    return await client.get(f"/api/v1{path}", headers=auth, params=params)


def seed_runs(read_model: ReadModel, tenant: str, other: str) -> dict[str, Any]:
    wf_a, wf_b = uuid.uuid4(), uuid.uuid4()
    runs = {
        "ok": run_of(tenant, workflow_id=wf_a, start=T0),
        "failed": run_of(
            tenant,
            workflow_id=wf_a,
            start=T0 + timedelta(hours=1),
            steps=[("s1", "agents.x:run", False)],
            end="ExecutionFailed",
        ),
        "running": run_of(tenant, workflow_id=wf_b, start=T0 + timedelta(hours=2), end=None),
        "theirs": run_of(other, workflow_id=wf_a, start=T0),
    }
    read_model.project(e for chain in runs.values() for e in chain.events)
    return {
        "wf_a": str(wf_a),
        "wf_b": str(wf_b),
        **{name: chain.aggregate_id for name, chain in runs.items()},
    }


async def test_executions_are_filtered_and_tenant_scoped(
    read_model: ReadModel,
    read_client_factory: ClientFactory,
    auth_factory: Auth,
    tenant_factory: Callable[[], str],
) -> None:
    tenant, other = tenant_factory(), tenant_factory()
    ids = seed_runs(read_model, tenant, other)
    client, auth = read_client_factory(), auth_factory(tenant=tenant)

    async def ids_of(**params: Any) -> list[str]:
        response = await get(client, auth, "/executions", **params)
        assert response.status_code == 200, response.text
        return [item["execution_id"] for item in response.json()["items"]]

    assert await ids_of() == [ids["running"], ids["failed"], ids["ok"]]
    assert await ids_of(status="failed") == [ids["failed"]]
    assert await ids_of(workflow_id=ids["wf_b"]) == [ids["running"]]
    assert await ids_of(agent="agents.x:run") == [ids["failed"]]
    window = {
        "started_after": (T0 + timedelta(minutes=30)).isoformat(),
        "started_before": (T0 + timedelta(minutes=90)).isoformat(),
    }
    assert await ids_of(**window) == [ids["failed"]]
    # The other tenant sees only its own run, and never this tenant's.
    theirs = await get(client, auth_factory(tenant=other), "/executions")
    assert [i["execution_id"] for i in theirs.json()["items"]] == [ids["theirs"]]
    running = await ids_of(status="running")
    assert running == [ids["running"]]


async def test_pages_walk_every_run_once(
    read_model: ReadModel,
    read_client_factory: ClientFactory,
    auth_factory: Auth,
    tenant_factory: Callable[[], str],
) -> None:
    tenant = tenant_factory()
    chains = [run_of(tenant, start=T0 + timedelta(minutes=i)) for i in range(7)]
    read_model.project(e for chain in chains for e in chain.events)
    client, auth = read_client_factory(), auth_factory(tenant=tenant)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = (await get(client, auth, "/executions", **params)).json()
        seen += [item["execution_id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [chain.aggregate_id for chain in reversed(chains)]
    bad = await get(client, auth, "/executions", cursor="not-a-cursor")
    assert bad.status_code == 422
    assert bad.json()["type"].endswith("invalid-cursor")


async def test_timeline_holds_the_run_and_everything_about_it(
    read_model: ReadModel,
    read_client_factory: ClientFactory,
    auth_factory: Auth,
    tenant_factory: Callable[[], str],
) -> None:
    tenant = tenant_factory()
    run = run_of(tenant, steps=[("s1", "agents.x:run", False)], end=None)
    execution = uuid.UUID(run.aggregate_id)
    failure = single(
        "FailureDetected",
        tenant,
        at=T0 + timedelta(seconds=5),
        failure_id=uuid.uuid4(),
        execution_id=execution,
    )
    run.add("ExecutionFailed", at=T0 + timedelta(seconds=9))
    read_model.project([*run.events, failure])
    client = read_client_factory()

    response = await get(client, auth_factory(tenant=tenant), f"/executions/{execution}/timeline")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["execution"]["status"] == "failed"
    assert [s["status"] for s in body["steps"]] == ["failed"]
    assert [e["event_type"] for e in body["events"]] == [
        "ExecutionStarted",
        "StepScheduled",
        "StepStarted",
        "StepFailed",
        "FailureDetected",
        "ExecutionFailed",
    ]
    paged = await get(
        client, auth_factory(tenant=tenant), f"/executions/{execution}/timeline", limit=4
    )
    rest = await get(
        client,
        auth_factory(tenant=tenant),
        f"/executions/{execution}/timeline",
        cursor=paged.json()["next_cursor"],
    )
    assert len(paged.json()["events"]) + len(rest.json()["events"]) == 6
    for who in (auth_factory(tenant=tenant_factory()), auth_factory(tenant=tenant)):
        missing = await get(client, who, f"/executions/{uuid.uuid4()}/timeline")
        assert missing.status_code == 404
    other = await get(
        client, auth_factory(tenant=tenant_factory()), f"/executions/{execution}/timeline"
    )
    assert other.status_code == 404


async def test_audit_filters_and_pages(
    read_model: ReadModel,
    read_client_factory: ClientFactory,
    auth_factory: Auth,
    tenant_factory: Callable[[], str],
) -> None:
    tenant = tenant_factory()
    entries = [
        single(
            "CommandRecorded",
            tenant,
            at=T0 + timedelta(seconds=i),
            actor="bob" if i % 2 else "alice",
            result="refused" if i == 3 else "accepted",
            command="executions.start",
        )
        for i in range(6)
    ]
    entries.append(single("CommandRecorded", tenant_factory(), actor="bob"))
    read_model.project(entries)
    client, auth = read_client_factory(), auth_factory(tenant=tenant)
    bob = (await get(client, auth, "/audit", actor="bob")).json()["items"]
    assert [r["event_id"] for r in bob] == [str(entries[i]["event_id"]) for i in (5, 3, 1)]
    refused = (await get(client, auth, "/audit", result="refused")).json()["items"]
    assert [r["event_id"] for r in refused] == [str(entries[3]["event_id"])]
    first = (await get(client, auth, "/audit", limit=4)).json()
    second = (await get(client, auth, "/audit", limit=4, cursor=first["next_cursor"])).json()
    assert len(first["items"]) + len(second["items"]) == 6 and second["next_cursor"] is None


async def test_analytics_count_runs_and_step_latency(
    read_model: ReadModel,
    read_client_factory: ClientFactory,
    auth_factory: Auth,
    tenant_factory: Callable[[], str],
) -> None:
    tenant = tenant_factory()
    chains = [run_of(tenant, start=T0 + timedelta(minutes=i)) for i in range(3)]
    chains.append(
        run_of(
            tenant,
            start=T0 + timedelta(minutes=5),
            steps=[("s1", "agents.x:run", False)],
            end="ExecutionFailed",
        )
    )
    read_model.project(e for chain in chains for e in chain.events)
    client, auth = read_client_factory(), auth_factory(tenant=tenant)
    window = {"start": T0.isoformat(), "end": (T0 + timedelta(hours=1)).isoformat()}

    runs = (await get(client, auth, "/analytics/runs", bucket="hour", **window)).json()
    assert len(runs["buckets"]) == 1
    bucket = runs["buckets"][0]
    assert (bucket["runs"], bucket["completed"], bucket["failed"]) == (4, 3, 1)
    assert bucket["failure_rate"] == pytest.approx(0.25)
    steps = (
        await get(client, auth, "/analytics/steps", bucket="hour", group_by="agent", **window)
    ).json()["buckets"]
    by_agent = {row["key"]: row for row in steps}
    assert by_agent["agents.r:run"]["steps"] == 3
    assert by_agent["agents.r:run"]["p95_ms"] == pytest.approx(1000)
    assert by_agent["agents.r:run"]["tokens_in"] == 300
    assert by_agent["agents.x:run"]["failed"] == 1
    too_many = await get(
        client,
        auth,
        "/analytics/runs",
        bucket="minute",
        start=T0.isoformat(),
        end=(T0 + timedelta(days=30)).isoformat(),
    )
    assert too_many.status_code == 400


async def test_checkpoint_state_is_served_only_when_its_checksum_holds(
    read_model: ReadModel,
    read_client_factory: ClientFactory,
    auth_factory: Auth,
    tenant_factory: Callable[[], str],
) -> None:
    tenant = tenant_factory()
    state = b'{"draft": "v1"}'
    run = Chain(tenant)
    run.add("ExecutionStarted")
    run.add(
        "CheckpointCreated",
        checkpoint_id="cp-1",
        storage="inline",
        inline_state=state,
        checksum_sha256=hashlib.sha256(state).hexdigest(),
        size_bytes=len(state),
    )
    run.add(
        "CheckpointCreated",
        checkpoint_id="cp-bad",
        storage="inline",
        inline_state=b"x",
        checksum_sha256=hashlib.sha256(b"y").hexdigest(),
        size_bytes=1,
    )
    read_model.project(run.events)
    client, auth = read_client_factory(), auth_factory(tenant=tenant)
    base = f"/executions/{run.aggregate_id}/checkpoints"

    ok = await get(client, auth, f"{base}/cp-1/state")
    assert ok.status_code == 200
    assert ok.content == state
    assert ok.headers["X-Checksum-SHA256"] == hashlib.sha256(state).hexdigest()
    corrupt = await get(client, auth, f"{base}/cp-bad/state")
    assert corrupt.status_code == 409
    assert corrupt.json()["type"].endswith("checkpoint-corrupt")
    assert (
        await get(client, auth_factory(tenant=tenant_factory()), f"{base}/cp-1/state")
    ).status_code == 404


async def test_read_routes_need_credentials(read_client_factory: ClientFactory) -> None:
    client = read_client_factory()
    for path in ("/executions", "/audit", "/analytics/runs", "/executions/x/timeline"):
        assert (await client.get(f"/api/v1{path}")).status_code == 401


async def test_a_read_after_its_pooled_connection_died_is_answered(
    read_model: ReadModel,
    app_factory: Callable[..., FastAPI],
    async_client_factory: Callable[[FastAPI], httpx.AsyncClient],
    auth_factory: Callable[..., dict[str, str]],
    tenant_factory: Callable[[], str],
) -> None:
    # What a PostgreSQL restart does to every pooled connection, done to the read stores' one.
    app = app_factory(read_model.settings)
    stores = app.state.read_stores = ReadStores(read_model.settings)
    auth = auth_factory(tenant=tenant_factory())
    try:
        async with async_client_factory(app) as client:
            assert (await get(client, auth, "/executions")).status_code == 200
            dead = await _every_backend_of(await stores.pool())
            with psycopg.connect(read_model.settings.postgres.dsn(), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s) AS pid", (dead,))
            answer = await get(client, auth, "/executions")
    finally:
        await stores.aclose()
    assert dead and answer.status_code == 200, answer.text


async def _every_backend_of(pool: AsyncConnectionPool) -> list[int]:
    """The server pids of every connection the pool holds (all checked out at once)."""
    async with contextlib.AsyncExitStack() as stack:
        held = [
            await stack.enter_async_context(pool.connection())
            for _ in range(pool.get_stats()["pool_size"])
        ]
        return [conn.info.backend_pid for conn in held]
