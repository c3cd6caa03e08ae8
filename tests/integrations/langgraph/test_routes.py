"""The ``/api/v1/langgraph`` routes' refusals and tenancy, through the client."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from omium.sdk.client import Client, ForbiddenError, InvalidRequestError
from tests.sdk.client.fixtures import LiveGateway

pytestmark = pytest.mark.integration

CHECKPOINTS = "/api/v1/langgraph/checkpoints"


def put_body(thread: str, cid: str = "1", **extra: Any) -> dict[str, Any]:
    return {
        "thread_id": thread,
        "checkpoint_id": cid,
        "metadata": {"step": 0},
        "checkpoint": {"type": "bytes", "data": base64.b64encode(b"state").decode()},
        **extra,
    }


def test_bad_input_is_refused_with_4xx(client_factory: Callable[..., Client]) -> None:
    omium = client_factory("developer")
    refusals: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]] = [
        ("GET", CHECKPOINTS, None, {"thread_id": "a\x00b"}),
        ("GET", CHECKPOINTS, None, {"filter": "[1, 2]"}),
        ("GET", CHECKPOINTS, None, {"filter": '{"a": NaN}'}),
        ("GET", CHECKPOINTS, None, {"filter": '{"a": "\\u0000"}'}),
        ("GET", CHECKPOINTS, None, {"cursor": "not-a-cursor"}),
        ("GET", CHECKPOINTS, None, {"limit": 0}),
        ("POST", CHECKPOINTS, put_body("t", metadata={"a": "\x00"}), None),
        ("POST", CHECKPOINTS, put_body("t", tenant_id="other"), None),
        ("POST", CHECKPOINTS, {**put_body("t"), "checkpoint": {"type": "x", "data": "!!"}}, None),
        ("POST", CHECKPOINTS, {**put_body("t"), "checkpoint": {"type": "x", "data": "abc"}}, None),
        ("POST", "/api/v1/langgraph/threads/prune", {"thread_ids": ["t"], "strategy": "all"}, None),
    ]
    for method, path, body, params in refusals:
        with pytest.raises(InvalidRequestError) as refused:
            omium.request(method, path, json=body, params=params)
        assert refused.value.status in (400, 422), (path, body, params)


def test_unpaired_surrogates_are_refused(live_gateway: LiveGateway) -> None:
    token = live_gateway.token("developer", tenant="surrogates")
    for raw in (b'"thread_id": "\\ud800"', b'"thread_id": "t", "metadata": {"k": "\\udfff"}'):
        body = b'{"checkpoint_id": "1", "checkpoint": {"type": "x", "data": ""}, ' + raw + b"}"
        response = httpx.post(
            live_gateway.url + CHECKPOINTS,
            content=body,
            timeout=10,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert response.status_code == 422, response.text


def test_roles_and_tenants(
    client_factory: Callable[..., Client], live_gateway: LiveGateway
) -> None:
    thread = f"t-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ForbiddenError):
        client_factory("viewer").request("POST", CHECKPOINTS, json=put_body(thread))
    stored = client_factory("developer").request("POST", CHECKPOINTS, json=put_body(thread))
    assert stored["thread_id"] == thread and stored["omium_checkpoint_id"] == "1"

    with Client(live_gateway.url, token=live_gateway.token("admin", tenant="elsewhere")) as other:
        assert other.request("GET", CHECKPOINTS, params={"thread_id": thread})["items"] == []
    page = client_factory("viewer").request("GET", CHECKPOINTS, params={"thread_id": thread})
    assert [item["checkpoint_id"] for item in page["items"]] == ["1"]
