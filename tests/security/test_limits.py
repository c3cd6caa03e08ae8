"""Oversized and hostile requests get a clear 4xx (413, 431, 400), never a 500 or a hang.

The limits are settings (``gateway.max_body_bytes``, ``max_header_bytes``, ``max_headers``,
``max_json_depth``); the checks run before anything parses the request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from omium.gateway._limits import json_depth_exceeds
from omium.kernel.settings import OmiumSettings
from tests.security.fixtures import API, Tenant

pytestmark = pytest.mark.integration


def problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    """Assert a problem answer of ``status`` and type ``slug``; its body."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["type"].endswith(f":{slug}"), body
    return body


@pytest.fixture
def tenant(tenant_factory: Callable[[], Tenant]) -> Tenant:
    """A caller in a fresh tenant."""
    return tenant_factory()


def workflow_body(definition_extra: Any = None) -> dict[str, Any]:
    """A valid workflow registration, with ``definition_extra`` under ``definition.extra``."""
    definition: dict[str, Any] = {"steps": [{"id": "a", "agent": "agents.a:run"}]}
    if definition_extra is not None:
        definition["extra"] = definition_extra
    return {"name": f"wf-{time.monotonic_ns()}", "definition": definition}


def nested(depth: int) -> Any:
    """``{"a": {"a": ... 1}}`` nested ``depth`` objects deep."""
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def test_a_body_over_the_limit_is_413_by_length_and_while_streaming(
    tenant: Tenant, security_settings: OmiumSettings
) -> None:
    limit = security_settings.gateway.max_body_bytes
    big = b'{"name": "' + b"x" * limit + b'"}'
    headers = tenant.headers("admin", **{"Content-Type": "application/json"})

    declared = tenant.client.post(f"{API}/workflows", content=big, headers=headers)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    streamed = tenant.client.post(f"{API}/workflows", content=chunks(), headers=headers)

    for response in (declared, streamed):
        assert problem(response, 413, "request-too-large")["max_bytes"] == limit


def test_headers_over_the_limits_are_431(tenant: Tenant, security_settings: OmiumSettings) -> None:
    gateway = security_settings.gateway
    one_big = tenant.headers("viewer", **{"X-Padding": "p" * gateway.max_header_bytes})
    many = tenant.headers("viewer", **{f"X-Pad-{i}": "p" for i in range(gateway.max_headers)})
    huge_token = {"Authorization": "Bearer " + "e" * (gateway.max_header_bytes + 1)}

    for headers in (one_big, many, huge_token):
        response = tenant.client.get(f"{API}/whoami", headers=headers)
        body = problem(response, 431, "headers-too-large")
        assert (body["max_bytes"], body["max_count"]) == (
            gateway.max_header_bytes,
            gateway.max_headers,
        )
    assert tenant.get("/whoami").status_code == 200


@pytest.mark.parametrize("depth", [65, 300, 990, 5000, 200_000])
def test_json_nested_beyond_the_limit_is_400(
    tenant: Tenant, security_settings: OmiumSettings, depth: int
) -> None:
    """Deeper documents used to be stored and then fail with 500 when read back."""
    headers = tenant.headers("admin", **{"Content-Type": "application/json"})
    limit = security_settings.gateway.max_json_depth
    arrays = b'{"name": "deep", "definition": ' + b"[" * depth + b"]" * depth + b"}"
    objects = json.dumps(workflow_body(nested(depth))) if depth < 900 else None

    for body in (arrays, objects):
        if body is None:
            continue
        started = time.monotonic()
        response = tenant.client.post(f"{API}/workflows", content=body, headers=headers)
        assert time.monotonic() - started < 5
        detail = problem(response, 400, "malformed-request")["detail"]
        assert f"deeper than {limit}" in detail


def test_json_at_the_depth_limit_is_stored_and_served_back(tenant: Tenant) -> None:
    # The body itself adds three levels (body, definition, extra) around the nested objects.
    accepted = tenant.ok(tenant.post("/workflows", workflow_body(nested(60))), 201)

    served = tenant.get(f"/workflows/{accepted['workflow_id']}")

    assert served.status_code == 200, served.text


def test_brackets_inside_strings_do_not_count_as_depth(tenant: Tenant) -> None:
    text = "[" * 500 + "{" * 500 + '\\"[[['
    tenant.ok(tenant.post("/workflows", workflow_body({"text": text})), 201)
    assert not json_depth_exceeds(json.dumps({"a": text}).encode(), 2)


@pytest.mark.parametrize(
    "query",
    [b"status=%00", b"workflow_id=%ff%fe", b"agent=" + b"a" * 5000, b"limit=99999999999999999999"],
)
def test_hostile_query_strings_are_4xx(tenant: Tenant, query: bytes) -> None:
    response = tenant.client.get(
        f"{API}/executions?{query.decode('latin-1')}", headers=tenant.headers("viewer")
    )
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize(
    "body",
    [b"{", b"[1, 2", b'{"name": "x", "definition": NaN}', b"\xff\xfe", b'"just a string"', b""],
)
def test_malformed_bodies_are_4xx(tenant: Tenant, body: bytes) -> None:
    headers = tenant.headers("admin", **{"Content-Type": "application/json"})
    response = tenant.client.post(f"{API}/workflows", content=body, headers=headers)
    assert 400 <= response.status_code < 500, response.text


def test_a_non_json_body_is_415(tenant: Tenant) -> None:
    headers = tenant.headers("admin", **{"Content-Type": "application/xml"})
    response = tenant.client.post(f"{API}/workflows", content=b"<x/>", headers=headers)
    assert response.status_code == 415, response.text
