"""Load shedding: commands beyond ``max_commands_in_flight`` are refused at once with 503."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from omium.gateway import Role, requires
from omium.kernel.settings import OmiumSettings

pytestmark = pytest.mark.anyio

router = APIRouter(prefix="/held", tags=["test"])
entered: list[str] = []


@router.post("/{name}", dependencies=[requires(Role.OPERATOR, command="test.held")])
async def held_command(name: str, request: Request) -> dict[str, str]:
    """Stays in flight until the test sets ``app.state.release``."""
    entered.append(name)
    await request.app.state.release.wait()
    return {"name": name}


@router.get("/{name}", dependencies=[requires(Role.VIEWER)])
async def read(name: str) -> dict[str, str]:
    return {"name": name}


@pytest.fixture
def app_with(
    gateway_settings_factory: Callable[..., OmiumSettings],
    app_factory: Callable[..., FastAPI],
) -> Callable[[int], FastAPI]:
    def build(limit: int) -> FastAPI:
        entered.clear()
        app = app_factory(
            gateway_settings_factory(max_commands_in_flight=limit), extra_routers=[router]
        )
        app.state.release = asyncio.Event()
        return app

    return build


async def hold(
    client: httpx.AsyncClient, headers: dict[str, str], names: list[str]
) -> list[asyncio.Task[httpx.Response]]:
    """Send a held command per name; return once every one is in flight (inside its route)."""
    held = [
        asyncio.create_task(client.post(f"/api/v1/held/{n}", headers=headers, json={}))
        for n in names
    ]
    for _ in range(200):
        if len(entered) >= len(names):
            return held
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {entered} entered")


async def test_a_command_beyond_the_limit_is_shed_with_a_problem_and_retry_after(
    app_with: Callable[[int], FastAPI],
    async_client_factory: Callable[[FastAPI], httpx.AsyncClient],
    auth_factory: Callable[..., dict[str, str]],
) -> None:
    app = app_with(2)
    headers = auth_factory("operator")
    async with async_client_factory(app) as client:
        held = await hold(client, headers, ["a", "b"])
        shed = await client.post("/api/v1/held/c", headers=headers, json={})
        read = await client.get("/api/v1/held/d", headers=headers)  # reads are not counted
        app.state.release.set()
        answered = await asyncio.gather(*held)
        after = await client.post("/api/v1/held/e", headers=headers, json={})
        metrics = (await client.get("/metrics")).text

    assert shed.status_code == 503 and shed.headers["Retry-After"] == "1"
    assert shed.headers["content-type"].startswith("application/problem+json")
    problem = shed.json()
    assert problem["type"].endswith(":overloaded") and problem["limit"] == 2
    assert entered == ["a", "b", "e"]  # the shed command never reached its route
    assert read.status_code == 200
    assert [r.status_code for r in answered] == [200, 200] and after.status_code == 200
    assert "omium_gateway_commands_shed_total 1.0" in metrics
    assert "omium_gateway_commands_in_flight 0.0" in metrics


async def test_no_limit_admits_every_command(
    app_with: Callable[[int], FastAPI],
    async_client_factory: Callable[[FastAPI], httpx.AsyncClient],
    auth_factory: Callable[..., dict[str, str]],
) -> None:
    app = app_with(0)
    headers = auth_factory("operator")
    async with async_client_factory(app) as client:
        held = await hold(client, headers, [str(n) for n in range(40)])
        app.state.release.set()
        answered = await asyncio.gather(*held)
    assert {r.status_code for r in answered} == {200}
