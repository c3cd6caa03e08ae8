"""Search routes over the OpenSearch read models: text, filters, pages, groups, tenancy."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.gateway.read.conftest import SearchModel
from tests.projections.helpers import T0, single

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

Auth = Callable[..., dict[str, str]]
ClientFactory = Callable[[], httpx.AsyncClient]


def spans(tenant: str, trace: str, count: int) -> list[dict[str, Any]]:
    return [
        single(
            "SpanRecorded",
            tenant,
            trace_id=trace,
            span_id=f"{i:016x}",
            name="tool.search" if i % 3 == 0 else "llm.chat",
            status="error" if i == 4 else "ok",
            start_time=T0 + timedelta(seconds=i),
            end_time=T0 + timedelta(seconds=i + 1),
        )
        for i in range(count)
    ]


async def test_spans_search_filters_pages_and_stays_in_the_tenant(
    search_model: SearchModel,
    read_client_factory: ClientFactory,
    auth_factory: Auth,
    tenant_factory: Callable[[], str],
) -> None:
    tenant, other = tenant_factory(), tenant_factory()
    trace = uuid.uuid4().hex
    search_model.project(spans(tenant, trace, 7) + spans(other, trace, 2))
    client, auth = read_client_factory(), auth_factory(tenant=tenant)

    found = (await client.get("/api/v1/traces/spans", headers=auth, params={"q": "search"})).json()
    assert [s["name"] for s in found["items"]] == ["tool.search"] * 3
    errors = (
        await client.get("/api/v1/traces/spans", headers=auth, params={"status": "error"})
    ).json()["items"]
    assert [s["span_id"] for s in errors] == [f"{4:016x}"]
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/api/v1/traces/spans", headers=auth, params=params)).json()
        seen += [s["span_id"] for s in body["items"]]
        if (cursor := body["next_cursor"]) is None:
            break
    assert seen == [f"{i:016x}" for i in reversed(range(7))]

    whole = (await client.get(f"/api/v1/traces/{trace}", headers=auth)).json()
    assert [s["span_id"] for s in whole["spans"]] == [f"{i:016x}" for i in range(7)]
    theirs = (
        await client.get(f"/api/v1/traces/{trace}", headers=auth_factory(tenant=other))
    ).json()
    assert len(theirs["spans"]) == 2
    missing = await client.get(f"/api/v1/traces/{uuid.uuid4().hex}", headers=auth)
    assert missing.status_code == 404


async def test_failures_search_and_similar_groups(
    search_model: SearchModel,
    read_client_factory: ClientFactory,
    auth_factory: Auth,
    tenant_factory: Callable[[], str],
) -> None:
    tenant = tenant_factory()
    events = []
    for i in range(5):
        failure_id = uuid.uuid4()
        signature = "postcondition:review.citations:empty" if i < 3 else "timeout:draft"
        events.append(
            single(
                "FailureDetected",
                tenant,
                failure_id=failure_id,
                signature=signature,
                execution_id=uuid.uuid4(),
                message=f"failure {i} citations" if i < 3 else "step timed out",
                at=T0 + timedelta(minutes=i),
            )
        )
        if i == 0:
            events.append(single("RecoveryPlanned", tenant, failure_id=failure_id, plan="rollback"))
    search_model.project([*events, single("FailureDetected", tenant_factory())])
    client, auth = read_client_factory(), auth_factory(tenant=tenant)

    hits = (await client.get("/api/v1/failures", headers=auth, params={"q": "citations"})).json()[
        "items"
    ]
    assert len(hits) == 3
    planned = (
        await client.get("/api/v1/failures", headers=auth, params={"plan": "rollback"})
    ).json()["items"]
    assert [f["plan"] for f in planned] == ["rollback"]
    groups = (await client.get("/api/v1/failures/groups", headers=auth)).json()
    assert [(g["signature"], g["count"], g["executions"]) for g in groups] == [
        ("postcondition:review.citations:empty", 3, 3),
        ("timeout:draft", 2, 2),
    ]
    assert groups[0]["sample"]["message"] == "failure 2 citations"
