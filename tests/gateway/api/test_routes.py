"""Every route of the app, walked from the catalogue: happy path, role matrix, tenant isolation and
idempotent replays, on the real PostgreSQL event store, Redis and Kafka."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from omium.gateway import API_PREFIX, Role, create_app, in_memory_services, route_rules
from omium.gateway._policy import api_routes
from omium.kernel.settings import load_settings
from tests.gateway.api.catalogue import ROUTES, Route, send
from tests.gateway.api.fixtures import Caller

pytestmark = pytest.mark.integration

COMMAND_MODULES = {
    f"omium.gateway.api.{name}" for name in ("workflows", "executions", "consensus", "policies")
}


def whole_route_table() -> list[tuple[str, str, Role]]:
    """Every ``/api/v1`` route of the app as it is built today, with its declared role."""
    settings = load_settings(environment="test")
    app = create_app(settings, services=in_memory_services(settings))
    return sorted(
        (method, path, rule.min_role)
        for (method, path), rule in route_rules(app).items()
        if path.startswith(API_PREFIX) and rule
    )


def test_every_command_api_route_has_a_scenario_and_its_documented_role(
    api_app: FastAPI,
) -> None:
    """A new command API route fails here until the catalogue has a scenario and its role."""
    declared = route_rules(api_app)
    ours = {
        (method, route.path)
        for route in api_routes(api_app)
        if route.endpoint.__module__ in COMMAND_MODULES
        for method in route.methods
    }
    catalogued = {route.key: route for route in ROUTES}
    assert ours - set(catalogued) == set(), "command API routes without a scenario"
    assert set(catalogued) - set(declared) == set(), "scenarios of routes the app lacks"
    wrong = {
        str(route): (getattr(declared[key], "min_role", None), route.role)
        for key, route in catalogued.items()
        if getattr(declared[key], "min_role", None) is not route.role
    }
    assert wrong == {}, "declared vs documented minimum role"


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_happy_path(route: Route, caller: Caller, event_count: Callable[[str, str], int]) -> None:
    call = route.scenario(caller)
    before = event_count(call.area, call.aggregate_id) if call.area and call.aggregate_id else 0
    response = send(caller, call, role=route.role.value)
    assert response.status_code == call.status, response.text
    if call.status == 204:
        return
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    if not route.is_command:
        return
    # Every accepted command names its aggregate, its new version (= ETag) and its events.
    aggregate_id = next(value for key, value in body.items() if key.endswith("_id"))
    assert call.aggregate_id in (None, aggregate_id)
    assert body["events"], body
    assert response.headers["etag"] == f'"{body["version"]}"'
    assert call.area is not None
    assert event_count(call.area, aggregate_id) == before + len(body["events"])
    if call.status == 201:
        assert aggregate_id in response.headers["location"]


@pytest.mark.parametrize("role", list(Role), ids=str)
@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_role_matrix(route: Route, role: Role, caller: Caller) -> None:
    """Every route by every role: the exact success status when allowed, else 403."""
    call = route.scenario(caller)
    response = send(caller, call, role=role.value)
    if role.covers(route.role):
        assert response.status_code == call.status, response.text
    else:
        assert response.status_code == 403, response.text
        problem = response.json()
        assert problem["required_role"] == route.role.value
        assert problem["actual_role"] == role.value


COMMANDS = [route for route in ROUTES if route.is_command]
# Routes that address something existing: by id in the path, a workflow id in the body (start),
# or a name in the query (find).
ADDRESSING = [
    route
    for route in ROUTES
    if "{" in route.template
    or str(route) in ("POST /executions", "GET /workflows", "GET /policies")
]


@pytest.mark.parametrize("route", ADDRESSING, ids=str)
def test_another_tenants_ids_are_not_found(
    route: Route, caller_factory: Callable[..., Caller], event_count: Callable[[str, str], int]
) -> None:
    owner, stranger = caller_factory(), caller_factory()
    call = route.scenario(owner)
    assert call.other_tenant is not None
    before = event_count(call.area, call.aggregate_id) if call.area and call.aggregate_id else 0
    response = send(stranger, call, role="admin")
    assert response.status_code == call.other_tenant, response.text
    if call.other_tenant == 404:
        assert response.json()["type"].endswith(":not-found")
    else:
        assert response.json() == []  # a search by name finds nothing of another tenant
    if call.area and call.aggregate_id:
        assert event_count(call.area, call.aggregate_id) == before
    # The owner still gets it: the 404 was about the tenant, not the id.
    assert send(owner, call, role="admin").status_code == call.status


@pytest.mark.parametrize("route", COMMANDS, ids=str)
def test_idempotency_key_replays_the_first_answer_and_writes_nothing(
    route: Route,
    caller: Caller,
    event_count: Callable[[str, str], int],
    idempotency_count: Callable[[str], int],
) -> None:
    call = route.scenario(caller)
    key = f"key-{route.template}"
    first = send(caller, call, Idempotency_Key=key)
    assert first.status_code == call.status, first.text
    aggregate_id = call.aggregate_id or next(
        value for name, value in first.json().items() if name.endswith("_id")
    )
    assert call.area is not None
    events, records = event_count(call.area, aggregate_id), idempotency_count(caller.tenant)

    again = send(caller, call, Idempotency_Key=key)

    assert again.status_code == first.status_code
    assert again.content == first.content
    for header in ("etag", "location", "content-type"):
        assert again.headers.get(header) == first.headers.get(header)
    assert event_count(call.area, aggregate_id) == events
    assert idempotency_count(caller.tenant) == records


def _placeholder(path: str) -> str:
    # Ids nobody has: the role check comes before any lookup, so the answer is 403 or not.
    return re.sub(
        r"\{([a-z_]+)\}", lambda m: str(uuid.uuid4()) if m.group(1).endswith("_id") else "x", path
    )


@pytest.mark.parametrize("role", list(Role), ids=str)
@pytest.mark.parametrize(
    ("method", "path", "minimum"), whole_route_table(), ids=lambda value: str(value)
)
def test_role_matrix_over_the_whole_route_table(
    method: str, path: str, minimum: Role, role: Role, caller: Caller
) -> None:
    """Every route of the app (the other areas' too) by every role: 403 exactly when too low.

    Placeholder ids and an empty body: an admitted caller gets an answer about the request
    (2xx, 404, 422 ...), never 401/403 and never a 5xx.
    """
    body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    response = caller.client.request(
        method, _placeholder(path), headers=caller.headers(role.value), **kwargs
    )
    if role.covers(minimum):
        assert response.status_code not in (401, 403), response.text
        assert response.status_code < 500, response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["required_role"] == minimum.value
