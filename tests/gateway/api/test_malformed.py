"""Bad input on every command route gets a 4xx problem, never a 5xx.

Each route's working body (from the catalogue) is broken in many ways: not JSON, not an object,
unknown fields, every field replaced by values of the wrong type or size, fields dropped, bad
ids in the path, bad headers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.gateway.api.catalogue import ROUTES, Call, Route, send
from tests.gateway.api.fixtures import API, Caller, Reply

pytestmark = pytest.mark.integration

WITH_BODY = [route for route in ROUTES if route.is_command]
WITH_IDS = [route for route in ROUTES if "{" in route.template and route.is_command]

WRONG_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**64,
    1.5,
    float("1e308"),
    "",
    " padded ",
    "1",
    "x" * 100_000,
    "\u0000",
    "line\nbreak",
    [],
    ["a"],
    {},
    {"nested": {"deep": [1, 2, 3]}},
    "2020-01-01T00:00:00",
    "not-a-uuid",
]
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def assert_problem(response: Reply, *statuses: int) -> dict[str, Any]:
    """A 4xx problem (one of ``statuses`` when given), never a server fault."""
    assert response.status_code < 500, response.text
    if statuses:
        assert response.status_code in statuses, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        problem: dict[str, Any] = response.json()
        assert problem["status"] == response.status_code
        return problem
    return {}


def mutations(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every field dropped, and every field set to every wrong value."""
    for name in body:
        yield f"drop {name}", {k: v for k, v in body.items() if k != name}
        for value in WRONG_VALUES:
            yield f"{name}={value!r:.20}", {**body, name: value}


def raw(
    c: Caller,
    call: Call,
    content: bytes | str,
    content_type: str = "application/json",
    **headers: str,
) -> Reply:
    """Send ``content`` as the body of ``call``."""
    return c.client.request(
        call.method,
        API + call.path,
        content=content,
        headers={**c.headers(**headers), "Content-Type": content_type},
    )


@pytest.mark.parametrize("route", WITH_BODY, ids=str)
def test_bodies_that_are_not_a_json_object(route: Route, caller: Caller) -> None:
    call = route.scenario(caller)
    for content in (b"{", b"not json", b'{"a": 1,}', b"[" * 50_000, b"\xff\xfe{}"):
        problem = assert_problem(raw(caller, call, content), 400)
        assert problem["type"].endswith(":malformed-request")
    for value in ("[]", '"text"', "42", "true", "[{}]"):
        assert_problem(raw(caller, call, value), 422)
    assert_problem(raw(caller, call, "{}", content_type="text/plain"), 415)
    assert_problem(raw(caller, call, "{" + " " * (1024 * 1024) + "}"), 413)


@pytest.mark.parametrize("route", WITH_BODY, ids=str)
def test_unknown_fields_are_refused(route: Route, caller: Caller) -> None:
    """A tenant id (or anything else unknown) in a body is a 422, never silently ignored."""
    call = route.scenario(caller)
    body = {**(call.body or {}), "tenant_id": "someone-else"}
    problem = assert_problem(raw(caller, call, json.dumps(body)), 422)
    assert ["body", "tenant_id"] in [error["loc"] for error in problem["errors"]]


@pytest.mark.parametrize("route", WITH_BODY, ids=str)
def test_every_field_broken_every_way(route: Route, caller: Caller) -> None:
    """Wrong types, sizes and values per field: 2xx when still valid, else 4xx, never 5xx."""
    call = route.scenario(caller)
    # A command without arguments still takes an optional body with expected_version.
    base = call.body if isinstance(call.body, dict) else {"expected_version": 1}
    statuses = set()
    for label, body in mutations(base):
        response = send(caller, Call(call.method, call.path, body, call.status), role="admin")
        assert response.status_code < 500, (label, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json", label
        statuses.add(response.status_code)
    assert 422 in statuses


@pytest.mark.parametrize("route", WITH_IDS, ids=str)
def test_bad_ids_in_the_path(route: Route, caller: Caller) -> None:
    call = route.scenario(caller)
    for bad in ("not-a-uuid", "00000000-0000-0000-0000-00000000000g", "%00", "x" * 300):
        path = _UUID.sub(bad, call.path, count=1)
        response = send(caller, Call(call.method, path, call.body, call.status))
        assert_problem(response, 404, 422)
    unknown = _UUID.sub("00000000-0000-4000-8000-000000000000", call.path, count=1)
    assert_problem(send(caller, Call(call.method, unknown, call.body, call.status)), 404)
    if "{step_id}" in route.template:
        long_step = call.path.replace("/steps/plan/", "/steps/" + "s" * 201 + "/").replace(
            "/steps/act/", "/steps/" + "s" * 201 + "/"
        )
        assert_problem(send(caller, Call(call.method, long_step, call.body, call.status)), 422)


@pytest.mark.parametrize("route", WITH_BODY[:6], ids=str)
def test_bad_headers(route: Route, caller: Caller) -> None:
    call = route.scenario(caller)
    for key in ("", " padded", "k" * 256, "tab\there"):
        problem = assert_problem(send(caller, call, Idempotency_Key=key), 400)
        assert problem["reason"] == "idempotency_key"
    if call.aggregate_id is not None:  # creations take no If-Match
        assert_problem(send(caller, call, If_Match='W/"1"'), 400)


def test_bad_query_parameters(caller: Caller) -> None:
    wid = caller.workflow()
    for value in ("0", "-1", "x", "1.5", str(2**40)):
        assert_problem(caller.get(f"/workflows/{wid}", definition_version=value), 422)
    # Without a name, GET /workflows lists the tenant's workflows (the operator CLI uses it).
    assert caller.get("/workflows").status_code == 200
    assert_problem(caller.get("/policies", name=" padded"), 422)


@pytest.mark.parametrize("path", ["/executions", "/audit", "/workflows", "/api-keys"])
def test_a_nul_or_non_utf8_query_string_is_bad_input(path: str, caller: Caller) -> None:
    # PostgreSQL text cannot hold NUL: refused before any read model query sees it.
    url = API + path
    nul = caller.client.get(url + "?agent=a%00b&name=x", headers=caller.headers())
    assert assert_problem(nul, 400)["reason"] == "query_nul"
    latin1 = caller.client.get(url + "?name=caf%E9", headers=caller.headers())
    assert assert_problem(latin1, 400)["reason"] == "query_encoding"


def test_an_api_key_name_must_be_printable(caller: Caller) -> None:
    for name in ("a\u0000b", "tab\there"):
        reply = caller.client.post(
            API + "/api-keys", json={"name": name, "role": "viewer"}, headers=caller.headers()
        )
        assert_problem(reply, 422)
