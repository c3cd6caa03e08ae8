"""SSE for one run and WebSocket for a tenant: order, resume, live delivery, auth."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from projections import ReadStores
from tests.gateway.read.conftest import LiveModel, ReadModel
from tests.projections.helpers import run_of

pytestmark = [pytest.mark.integration]

Auth = Callable[..., dict[str, str]]
ClientFactory = Callable[[], httpx.AsyncClient]


def parse_sse(text: str) -> list[dict[str, str]]:
    """The events of an SSE body (comments and the retry line left out)."""
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines()
                      if ": " in line and not line.startswith(":"))
        if "id" in fields:
            events.append(fields)
    return events


@pytest.mark.anyio
async def test_sse_delivers_a_run_in_order_and_resumes_after_last_event_id(
    live_model: LiveModel, read_client_factory: ClientFactory, auth_factory: Auth,
    tenant_factory: Callable[[], str],
) -> None:
    tenant = tenant_factory()
    run = run_of(tenant, steps=[("a", "x", True), ("b", "y", True)])
    live_model.project(run.events)
    client, auth = read_client_factory(), auth_factory(tenant=tenant)
    path = f"/api/v1/executions/{run.aggregate_id}/events"

    response = await client.get(path, headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    assert [e["event"] for e in events] == [e["event_type"] for e in run.events]

    resumed = await client.get(path, headers={**auth, "Last-Event-ID": events[2]["id"]})
    assert [e["id"] for e in parse_sse(resumed.text)] == [e["id"] for e in events[3:]]
    assert (await client.get(path, headers=auth_factory(tenant=tenant_factory()))).status_code \
        == 404
    assert (await client.get(path)).status_code == 401
    bad = await client.get(path, headers={**auth, "Last-Event-ID": "nope"})
    assert bad.status_code == 400


@pytest.mark.anyio
async def test_sse_follows_a_live_run_until_it_ends(
    live_model: LiveModel, read_client_factory: ClientFactory, auth_factory: Auth,
    tenant_factory: Callable[[], str],
) -> None:
    tenant = tenant_factory()
    run = run_of(tenant, steps=[("a", "x", True)])
    live_model.project(run.events[:2])
    client = read_client_factory()
    request = asyncio.create_task(
        client.get(f"/api/v1/executions/{run.aggregate_id}/events",
                   headers=auth_factory(tenant=tenant)))
    await asyncio.sleep(0.5)
    assert not request.done()
    live_model.project(run.events[2:])
    response = await asyncio.wait_for(request, timeout=10)
    assert [e["event"] for e in parse_sse(response.text)] == [e["event_type"]
                                                              for e in run.events]


@pytest.fixture
def ws_client_factory(
    read_model: ReadModel, app_factory: Callable[..., FastAPI]
) -> Any:
    """Builds a started ``TestClient`` (its own loop) for WebSocket tests; stops it after."""
    started: list[TestClient] = []

    def build() -> TestClient:
        app = app_factory(read_model.settings)
        app.state.read_stores = ReadStores(read_model.settings)
        client = TestClient(app)
        client.__enter__()
        started.append(client)
        return client

    yield build
    for client in started:
        client.portal.call(client.app.state.read_stores.aclose)  # type: ignore[union-attr]
        client.__exit__(None, None, None)


def test_websocket_streams_the_tenants_events_filtered_and_resumable(
    live_model: LiveModel, ws_client_factory: Callable[[], TestClient],
    token_factory: Callable[..., str], tenant_factory: Callable[[], str],
) -> None:
    tenant = tenant_factory()
    token = token_factory(tenant=tenant)
    client = ws_client_factory()
    first = run_of(tenant, steps=[("a", "x", True)])
    live_model.project(first.events)
    url = f"/api/v1/events/ws?access_token={token}&types=StepStarted,ExecutionCompleted"
    with client.websocket_connect(url) as ws:
        second = run_of(tenant, steps=[("b", "y", True), ("c", "z", True)])
        other = run_of(tenant_factory())
        live_model.project([*other.events, *second.events])
        got = [ws.receive_json() for _ in range(3)]
    assert [(m["event_type"], m["execution_id"]) for m in got] == [
        ("StepStarted", second.aggregate_id), ("StepStarted", second.aggregate_id),
        ("ExecutionCompleted", second.aggregate_id)]
    assert got[0]["payload"]["step_id"] == "b"

    # Resume after the first message: the next two come again; a header works as well.
    with client.websocket_connect(
        f"/api/v1/events/ws?types=StepStarted,ExecutionCompleted&cursor={got[0]['cursor']}",
        headers={"Authorization": f"Bearer {token}"},
    ) as ws:
        again = [ws.receive_json() for _ in range(2)]
    assert [m["cursor"] for m in again] == [m["cursor"] for m in got[1:]]


def test_websocket_refuses_missing_or_bad_credentials(
    live_model: LiveModel, ws_client_factory: Callable[[], TestClient],
) -> None:
    client = ws_client_factory()
    for url in ("/api/v1/events/ws", "/api/v1/events/ws?access_token=not-a-jwt"):
        with client.websocket_connect(url) as ws, pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4401
