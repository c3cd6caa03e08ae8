"""Authorization: every /api/v1 route declares a rule, roles are ordered, tenants come from the
principal only, and the Idempotency-Key reaches the handler."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from omium.gateway import (
    API_PREFIX,
    AccessRule,
    Command,
    IdempotencyKey,
    Principal,
    Role,
    TenantId,
    requires,
    route_rules,
    rule_of,
    unguarded_routes,
)
from omium.gateway._policy import access_matrix, api_routes
from omium.kernel.errors import ConfigurationError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"

sample = APIRouter(prefix="/sample", tags=["test"])


class Body(BaseModel):
    """A sample command body."""

    value: int = 0


@sample.get("/read", dependencies=[requires(Role.VIEWER)])
async def read(tenant_id: TenantId) -> dict[str, Any]:
    """Viewer route."""
    return {"tenant_id": tenant_id}


@sample.post("/runs", status_code=201, dependencies=[requires(Role.DEVELOPER)])
async def start_run(body: Body, ctx: Command) -> dict[str, Any]:
    """Developer route."""
    return {"tenant_id": ctx.tenant_id, "idempotency_key": ctx.idempotency_key}


@sample.post("/runs/{run_id}/rollback", dependencies=[requires(Role.OPERATOR)])
async def roll_back(run_id: str, key: IdempotencyKey) -> dict[str, Any]:
    """Operator route."""
    return {"run_id": run_id, "idempotency_key": key}


@sample.delete("/things/{thing}", status_code=204)
async def delete_thing(thing: str, admin: Annotated[Principal, requires(Role.ADMIN)]) -> None:
    """Admin route (rule declared on a parameter)."""


guarded_router = APIRouter(prefix="/guarded", dependencies=[requires(Role.VIEWER)])


@guarded_router.post("/approve", dependencies=[requires(Role.OPERATOR, command="x.approve")])
async def approve() -> dict[str, str]:
    """Router-level viewer rule plus a stricter route rule: the stricter one applies."""
    return {"ok": "yes"}


MATRIX = [
    ("GET", "/api/v1/sample/read", Role.VIEWER, None),
    ("POST", "/api/v1/sample/runs", Role.DEVELOPER, {"value": 1}),
    ("POST", "/api/v1/sample/runs/r1/rollback", Role.OPERATOR, None),
    ("DELETE", "/api/v1/sample/things/t1", Role.ADMIN, None),
    ("POST", "/api/v1/guarded/approve", Role.OPERATOR, None),
    ("GET", "/api/v1/api-keys", Role.ADMIN, None),
    ("POST", "/api/v1/api-keys", Role.ADMIN, {"name": "k", "role": "viewer"}),
    ("GET", "/api/v1/whoami", Role.VIEWER, None),
]


@pytest.fixture
def app(app_factory: Callable[..., FastAPI]) -> FastAPI:
    return app_factory(extra_routers=[sample, guarded_router])


@pytest.fixture
def client(app: FastAPI, client_factory: Callable[..., TestClient]) -> TestClient:
    return client_factory(app)


def test_every_api_route_declares_a_rule(app_factory: Callable[..., FastAPI]) -> None:
    """Walks the app's own routes (every router in gateway/api): a route without a rule fails."""
    app = app_factory()
    missing = [
        f"{sorted(route.methods)} {route.path}"
        for route in api_routes(app)
        if route.path.startswith(API_PREFIX) and rule_of(route) is None
    ]
    assert missing == [], f"routes without requires(...): {missing}"
    assert any(path.startswith(API_PREFIX) for _, path in route_rules(app))


def test_a_route_without_a_rule_is_found_and_refused(
    app_factory: Callable[..., FastAPI],
) -> None:
    naked = APIRouter()

    @naked.get("/naked")
    async def naked_route() -> dict[str, str]:
        return {}

    with pytest.raises(ConfigurationError, match="GET /api/v1/naked"):
        app_factory(extra_routers=[naked])
    probe = FastAPI()
    probe.include_router(naked, prefix=API_PREFIX)
    assert unguarded_routes(probe) == [("GET", "/api/v1/naked")]


def test_rules_are_read_back_from_the_route_table(app: FastAPI) -> None:
    rules = route_rules(app)
    assert rules[("POST", "/api/v1/sample/runs")] == AccessRule(Role.DEVELOPER)
    assert rules[("DELETE", "/api/v1/sample/things/{thing}")] == AccessRule(Role.ADMIN)
    assert rules[("POST", "/api/v1/guarded/approve")] == AccessRule(Role.OPERATOR, "x.approve")
    assert rules[("GET", "/health")] is None


@pytest.mark.parametrize("caller", list(Role))
@pytest.mark.parametrize(("method", "path", "minimum", "body"), MATRIX)
def test_role_matrix(
    client: TestClient,
    auth_factory: Callable[..., dict[str, str]],
    caller: Role,
    method: str,
    path: str,
    minimum: Role,
    body: dict[str, Any] | None,
) -> None:
    response = client.request(method, path, json=body, headers=auth_factory(caller.value))
    if caller.covers(minimum):
        assert response.status_code < 400, response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["required_role"] == minimum.value


def test_roles_are_ordered() -> None:
    assert [role.rank for role in Role] == [0, 1, 2, 3]
    assert Role.ADMIN.covers(Role.VIEWER) and not Role.VIEWER.covers(Role.DEVELOPER)
    assert Role.parse_many(["operator", "nope", 3]) == frozenset({Role.OPERATOR})


def test_tenant_comes_from_the_principal_only(
    client: TestClient,
    auth_factory: Callable[..., dict[str, str]],
) -> None:
    headers = {**auth_factory("viewer", tenant="acme"), "X-Tenant-ID": "globex"}
    response = client.get("/api/v1/sample/read", params={"tenant_id": "globex"}, headers=headers)
    assert response.json() == {"tenant_id": "acme"}


def test_tenant_in_a_body_is_refused(
    client: TestClient,
    auth_factory: Callable[..., dict[str, str]],
) -> None:
    response = client.post(
        "/api/v1/api-keys",
        headers=auth_factory("admin"),
        json={"name": "k", "role": "viewer", "tenant_id": "globex"},
    )
    assert response.status_code == 422


def test_idempotency_key_reaches_the_handler(
    client: TestClient,
    auth_factory: Callable[..., dict[str, str]],
) -> None:
    headers = auth_factory("operator")
    sent = client.post(
        "/api/v1/sample/runs",
        json={},
        headers={**headers, "Idempotency-Key": "run-2026-11-26/abc 1"},
    )
    assert sent.json()["idempotency_key"] == "run-2026-11-26/abc 1"
    absent = client.post("/api/v1/sample/runs", json={}, headers=headers)
    assert absent.json()["idempotency_key"] is None
    longest = "k" * 255
    rolled = client.post(
        "/api/v1/sample/runs/r9/rollback", headers={**headers, "Idempotency-Key": longest}
    )
    assert rolled.json() == {"run_id": "r9", "idempotency_key": longest}


def test_docs_matrix_matches_the_route_table(app_factory: Callable[..., FastAPI]) -> None:
    """docs/api.md carries the generated table; regenerate with `python -m omium.gateway routes`."""
    generated = access_matrix(app_factory())
    assert generated in DOCS.read_text(), (
        "docs/api.md is out of date: paste the output of "
        "`.venv/bin/python -m omium.gateway routes` between the route-table markers"
    )
