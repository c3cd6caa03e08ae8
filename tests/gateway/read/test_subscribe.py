"""SSE for one run and WebSocket for a tenant: order, resume, live delivery, auth."""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from omium.gateway.api.read_stream import _settled
from omium.kernel.settings import OmiumSettings
from omium.projections import ReadStores
from tests.gateway.read.conftest import LiveModel, ReadModel
from tests.projections.helpers import run_of

pytestmark = [pytest.mark.integration]

Auth = Callable[..., dict[str, str]]
ClientFactory = Callable[[], httpx.AsyncClient]


def parse_sse(text: str) -> list[dict[str, str]]:
    """The events of an SSE body (comments and the retry line left out)."""
    events = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in block.splitlines()
            if ": " in line and not line.startswith(":")
        )
        if "id" in fields:
            events.append(fields)
    return events


@pytest.mark.anyio
async def test_sse_delivers_a_run_in_order_and_resumes_after_last_event_id(
    live_model: LiveModel,
    read_client_factory: ClientFactory,
    auth_factory: Auth,
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
    assert (
        await client.get(path, headers=auth_factory(tenant=tenant_factory()))
    ).status_code == 404
    assert (await client.get(path)).status_code == 401
    bad = await client.get(path, headers={**auth, "Last-Event-ID": "nope"})
    assert bad.status_code == 400


@pytest.mark.anyio
async def test_sse_follows_a_live_run_until_it_ends(
    live_model: LiveModel,
    read_client_factory: ClientFactory,
    auth_factory: Auth,
    tenant_factory: Callable[[], str],
) -> None:
    tenant = tenant_factory()
    run = run_of(tenant, steps=[("a", "x", True)])
    live_model.project(run.events[:2])
    client = read_client_factory()
    request = asyncio.create_task(
        client.get(
            f"/api/v1/executions/{run.aggregate_id}/events", headers=auth_factory(tenant=tenant)
        )
    )
    await asyncio.sleep(0.5)
    assert not request.done()
    live_model.project(run.events[2:])
    response = await asyncio.wait_for(request, timeout=10)
    assert [e["event"] for e in parse_sse(response.text)] == [e["event_type"] for e in run.events]


@pytest.fixture
def ws_client_factory(
    read_model: ReadModel, app_factory: Callable[..., FastAPI]
) -> Iterator[Callable[[], TestClient]]:
    """Builds a started ``TestClient`` (its own loop) for WebSocket tests; stops it after."""
    started: list[tuple[TestClient, ReadStores]] = []

    def build() -> TestClient:
        app = app_factory(read_model.settings)
        stores = ReadStores(read_model.settings)
        app.state.read_stores = stores
        client = TestClient(app)
        client.__enter__()
        started.append((client, stores))
        return client

    yield build
    for client, stores in started:
        assert client.portal is not None  # entered: its portal runs until __exit__
        client.portal.call(stores.aclose)
        client.__exit__(None, None, None)


def test_websocket_streams_the_tenants_events_filtered_and_resumable(
    live_model: LiveModel,
    ws_client_factory: Callable[[], TestClient],
    token_factory: Callable[..., str],
    tenant_factory: Callable[[], str],
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
        ("StepStarted", second.aggregate_id),
        ("StepStarted", second.aggregate_id),
        ("ExecutionCompleted", second.aggregate_id),
    ]
    assert got[0]["payload"]["step_id"] == "b"

    # Resume after the first message: the next two come again; a header works as well.
    with client.websocket_connect(
        f"/api/v1/events/ws?types=StepStarted,ExecutionCompleted&cursor={got[0]['cursor']}",
        headers={"Authorization": f"Bearer {token}"},
    ) as ws:
        again = [ws.receive_json() for _ in range(2)]
    assert [m["cursor"] for m in again] == [m["cursor"] for m in got[1:]]


def test_websocket_refuses_missing_or_bad_credentials(
    live_model: LiveModel,
    ws_client_factory: Callable[[], TestClient],
) -> None:
    client = ws_client_factory()
    for url in ("/api/v1/events/ws", "/api/v1/events/ws?access_token=not-a-jwt"):
        with client.websocket_connect(url) as ws, pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4401


def test_websocket_takes_a_browsers_credential_from_its_subprotocols(
    live_model: LiveModel,
    ws_client_factory: Callable[[], TestClient],
    token_factory: Callable[..., str],
    tenant_factory: Callable[[], str],
) -> None:
    """``new WebSocket(url, ['omium.v1', 'omium.bearer.<token>'])``: the token never in the URL,
    the answer ``omium.v1`` (never the credential), and only the token's tenant's events."""
    tenant, other_tenant = tenant_factory(), tenant_factory()
    token = token_factory(tenant=tenant)
    client = ws_client_factory()
    offered = ["omium.v1", f"omium.bearer.{token}"]
    with client.websocket_connect("/api/v1/events/ws", subprotocols=offered) as ws:
        assert ws.accepted_subprotocol == "omium.v1"
        other = run_of(other_tenant, steps=[("x", "x", True)])
        mine = run_of(tenant, steps=[("a", "x", True)])
        live_model.project([*other.events, *mine.events])
        got = [ws.receive_json() for _ in range(len(mine.events))]
    assert [m["event_id"] for m in got] == [str(e["event_id"]) for e in mine.events]

    # The other tenant's token sees the other tenant's events, not these.
    other_token = token_factory(tenant=other_tenant)
    with client.websocket_connect(
        "/api/v1/events/ws", subprotocols=["omium.v1", f"omium.bearer.{other_token}"]
    ) as ws:
        later = run_of(other_tenant, steps=[("y", "y", True)])
        live_model.project([*run_of(tenant).events, *later.events])
        first = ws.receive_json()
    assert first["execution_id"] == later.aggregate_id


def test_websocket_takes_an_api_key_from_its_subprotocols_until_it_is_revoked(
    live_model: LiveModel,
    ws_client_factory: Callable[[], TestClient],
    token_factory: Callable[..., str],
    tenant_factory: Callable[[], str],
) -> None:
    """``omium.apikey.<key>`` works like ``X-API-Key``: its tenant's events; revoked, 4401."""
    tenant = tenant_factory()
    admin = {"Authorization": f"Bearer {token_factory(tenant=tenant, roles=['admin'])}"}
    client = ws_client_factory()
    created = client.post(
        "/api/v1/api-keys", json={"name": "dashboard", "role": "viewer"}, headers=admin
    ).json()
    offered = ["omium.v1", f"omium.apikey.{created['key']}"]
    with client.websocket_connect("/api/v1/events/ws", subprotocols=offered) as ws:
        assert ws.accepted_subprotocol == "omium.v1"
        mine = run_of(tenant, steps=[("a", "x", True)])
        live_model.project([*run_of(tenant_factory()).events, *mine.events])
        got = [ws.receive_json() for _ in range(len(mine.events))]
    assert [m["event_id"] for m in got] == [str(e["event_id"]) for e in mine.events]

    revoked = client.delete(f"/api/v1/api-keys/{created['key_id']}", headers=admin)
    assert revoked.status_code == 204
    with (
        client.websocket_connect("/api/v1/events/ws", subprotocols=offered) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_json()
    assert closed.value.code == 4401


def test_websocket_refuses_bad_expired_or_doubled_subprotocol_credentials(
    live_model: LiveModel,
    ws_client_factory: Callable[[], TestClient],
    token_factory: Callable[..., str],
) -> None:
    """Refused with 4401 after a handshake that still answers ``omium.v1``, so a browser sees
    the close code instead of a failed connection."""
    client = ws_client_factory()
    past = int(time.time()) - 3600
    expired = token_factory(
        claims={
            "sub": "alice",
            "tenant_id": "acme",
            "roles": ["viewer"],
            "aud": "omium",
            "iat": past - 60,
            "exp": past,
        }
    )
    good = token_factory(tenant="acme")
    cases: list[tuple[list[str], dict[str, str]]] = [
        (["omium.v1", f"omium.bearer.{expired}"], {}),
        (["omium.v1", "omium.bearer.not-a-jwt"], {}),
        (["omium.v1", "omium.apikey.omk_0123456789abcdef_nope"], {}),
        (["omium.v1"], {}),
        # Two credentials, even the same one twice, are refused like none.
        (["omium.v1", f"omium.bearer.{good}"], {"Authorization": f"Bearer {good}"}),
        (["omium.v1", f"omium.bearer.{good}", f"omium.bearer.{good}"], {}),
    ]
    for offered, headers in cases:
        with (
            client.websocket_connect(
                "/api/v1/events/ws", subprotocols=offered, headers=headers
            ) as ws,
            pytest.raises(WebSocketDisconnect) as closed,
        ):
            assert ws.accepted_subprotocol == "omium.v1"
            ws.receive_json()
        assert closed.value.code == 4401, offered


def rebuild_streams(live_model: LiveModel) -> None:
    """What ``omium replay redis`` leaves behind: the epoch moved on, and every stream holding
    the same entries under new ids (a rebuild adds them again)."""
    client = redis.Redis.from_url(live_model.redis_url, decode_responses=True)
    keys = live_model.projection.keys
    client.incr(keys.epoch)
    for key in client.scan_iter(match=f"{keys.prefix}:*", count=1000, _type="stream"):
        entries = client.xrange(key) or []
        client.delete(key)
        for _, fields in entries:
            client.xadd(key, {name: value for name, value in (fields or {}).items()})
    client.close()


@pytest.mark.anyio
async def test_sse_tells_a_client_holding_a_cursor_of_a_replaced_model_to_resync(
    live_model: LiveModel,
    read_client_factory: ClientFactory,
    auth_factory: Auth,
    tenant_factory: Callable[[], str],
) -> None:
    tenant = tenant_factory()
    run = run_of(tenant, steps=[("a", "x", True), ("b", "y", True)])
    live_model.project(run.events)
    client, auth = read_client_factory(), auth_factory(tenant=tenant)
    path = f"/api/v1/executions/{run.aggregate_id}/events"
    before = parse_sse((await client.get(path, headers=auth)).text)

    rebuild_streams(live_model)
    stale = {**auth, "Last-Event-ID": before[2]["id"]}
    resumed = parse_sse((await client.get(path, headers=stale)).text)

    assert resumed[0]["event"] == "resync" and resumed[0]["id"] == "1:0-0"
    assert json.loads(resumed[0]["data"])["payload"]["epoch"] == 1
    # Then the whole run again, with cursors of the new epoch that resume as before.
    assert [e["event"] for e in resumed[1:]] == [e["event_type"] for e in run.events]
    assert all(e["id"].startswith("1:") for e in resumed[1:])
    current = {**auth, "Last-Event-ID": resumed[3]["id"]}
    again = parse_sse((await client.get(path, headers=current)).text)
    assert [e["id"] for e in again] == [e["id"] for e in resumed[4:]]


@pytest.mark.anyio
async def test_sse_open_during_a_rebuild_resyncs_and_follows_the_run_to_its_end(
    live_model: LiveModel,
    read_client_factory: ClientFactory,
    auth_factory: Auth,
    tenant_factory: Callable[[], str],
) -> None:
    tenant = tenant_factory()
    run = run_of(tenant, steps=[("a", "x", True)])
    live_model.project(run.events[:2])
    client = read_client_factory()
    request = asyncio.create_task(
        client.get(
            f"/api/v1/executions/{run.aggregate_id}/events", headers=auth_factory(tenant=tenant)
        )
    )
    await asyncio.sleep(0.5)
    rebuild_streams(live_model)
    await asyncio.sleep(0.5)
    live_model.project(run.events[2:])
    response = await asyncio.wait_for(request, timeout=30)
    kinds = [e["event"] for e in parse_sse(response.text)]
    first_two = [e["event_type"] for e in run.events[:2]]
    assert kinds == [*first_two, "resync", *(e["event_type"] for e in run.events)]


def test_websocket_with_a_cursor_of_a_replaced_model_gets_resync_then_new_events(
    live_model: LiveModel,
    ws_client_factory: Callable[[], TestClient],
    token_factory: Callable[..., str],
    tenant_factory: Callable[[], str],
) -> None:
    tenant = tenant_factory()
    token = token_factory(tenant=tenant)
    client = ws_client_factory()
    first = run_of(tenant, steps=[("a", "x", True)])
    live_model.project(first.events)
    stale = "1712345678901-0"  # a cursor handed out before the rebuild
    rebuild_streams(live_model)
    with client.websocket_connect(f"/api/v1/events/ws?access_token={token}&cursor={stale}") as ws:
        resync = ws.receive_json()
        second = run_of(tenant, steps=[("b", "y", True)])
        live_model.project(second.events)
        got = [ws.receive_json() for _ in range(len(second.events))]
    assert resync["event_type"] == "resync" and resync["payload"]["epoch"] == 1
    assert resync["cursor"].startswith("1:")
    assert [m["event_id"] for m in got] == [str(e["event_id"]) for e in second.events]
    assert all(m["cursor"].startswith("1:") for m in got)


@pytest.mark.anyio
async def test_more_subscribers_than_redis_py_default_pool_wait_together(
    live_redis: OmiumSettings,
) -> None:
    # Each live subscriber holds a connection while it blocks in XREAD; redis-py's default
    # pool (100) refused the 101st with "Too many connections".
    stores = ReadStores(live_redis)
    client = stores.redis()
    stream = f"test-subscribers-{time.time_ns()}"
    try:
        waits = [client.xread({stream: "$"}, count=1, block=1500) for _ in range(150)]
        answers = await asyncio.gather(*waits, return_exceptions=True)
    finally:
        await stores.aclose()
    assert [a for a in answers if isinstance(a, BaseException)] == []


@pytest.mark.anyio
async def test_a_pump_failing_after_its_client_left_is_not_reported_as_never_retrieved() -> None:
    # CI printed "Task exception was never retrieved ... WebSocketDisconnect" for a WebSocket
    # subscription whose Redis went away after its client had left.
    reported: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))

    async def pump() -> None:
        raise WebSocketDisconnect(code=1006)

    try:
        for settle in (True, False):
            task = asyncio.create_task(pump())
            if settle:
                task.add_done_callback(_settled)
            await asyncio.sleep(0.01)
            del task
            gc.collect()
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    # Only the task without the callback is reported: the check can fail.
    assert [c["message"] for c in reported] == ["Task exception was never retrieved"]
