"""Search over the OpenSearch read models: spans and traces, failures and similar-failure groups."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Query

from omium.gateway._policy import TenantId, requires
from omium.gateway._principal import Role
from omium.gateway.api.read_common import (
    ReadModelNotFoundError,
    ReadModelUnavailableError,
    Stores,
    known,
)
from omium.projections import ReadStores
from omium.projections.opensearch import parse_groups, parse_page
from omium.sdk.client import Failure, FailureGroup, Page, Span, Trace

router = APIRouter(tags=["search"])

Text = Annotated[str | None, Query(max_length=500, description="Full-text query.")]
Term = Annotated[str | None, Query(max_length=200)]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=512)]


# The answers are the SDK's models (one definition for the gateway and its clients); a stored
# document is cut to the model's fields (``known``), so its other fields never reach a caller.
SpanPage = Page[Span]
FailurePage = Page[Failure]


async def _search(stores: ReadStores, path: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        response = await stores.opensearch().post(path, json=body)
    except httpx.HTTPError as exc:
        raise ReadModelUnavailableError(f"OpenSearch unavailable: {exc}") from exc
    if response.status_code == 404:
        return {}  # no index yet: the projection has not run, so nothing matches
    if response.status_code != 200:
        raise ReadModelUnavailableError(f"OpenSearch answered {response.status_code}")
    result: dict[str, Any] = response.json()
    return result


@router.get(
    "/traces/spans",
    response_model=SpanPage,
    summary="Search spans",
    dependencies=[requires(Role.VIEWER)],
)
async def search_spans(
    tenant_id: TenantId,
    stores: Stores,
    q: Text = None,
    trace_id: Term = None,
    execution_id: Term = None,
    kind: Literal["execution", "step", "llm_call", "tool_call", "agent", "checkpoint", "policy"]
    | None = None,
    status: Literal["unset", "ok", "error"] | None = None,
    agent: Term = None,
    model: Term = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> SpanPage:
    """Spans by full text (name, status message) and filters, newest first."""
    path, body = stores.search.spans(
        tenant_id,
        text=q,
        trace_id=trace_id,
        execution_id=execution_id,
        kind=kind,
        status=status,
        agent=agent,
        model=model,
        start=start,
        end=end,
        limit=limit,
        cursor=cursor,
    )
    page = parse_page(await _search(stores, path, body), kind="spans", limit=limit)
    return SpanPage(items=[known(Span, s) for s in page.items], next_cursor=page.next_cursor)


@router.get(
    "/traces/{trace_id}",
    response_model=Trace,
    summary="One trace's spans",
    dependencies=[requires(Role.VIEWER)],
)
async def get_trace(trace_id: str, tenant_id: TenantId, stores: Stores) -> Trace:
    """Every span of the trace, in start order; 404 when the tenant has none."""
    path, body = stores.search.trace(tenant_id, trace_id)
    hits = (await _search(stores, path, body)).get("hits", {}).get("hits", [])
    if not hits:
        raise ReadModelNotFoundError("Trace", trace_id)
    return Trace(trace_id=trace_id, spans=[known(Span, h["_source"]) for h in hits])


@router.get(
    "/failures",
    response_model=FailurePage,
    summary="Search failures",
    dependencies=[requires(Role.VIEWER)],
)
async def search_failures(
    tenant_id: TenantId,
    stores: Stores,
    q: Text = None,
    kind: Term = None,
    signature: Term = None,
    execution_id: Term = None,
    agent: Term = None,
    model: Term = None,
    plan: Literal["retry", "rollback", "fallback", "escalate", "abort"] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> FailurePage:
    """Failures by full text (message, plan reason) and filters, newest first."""
    path, body = stores.search.failures(
        tenant_id,
        text=q,
        kind=kind,
        signature=signature,
        execution_id=execution_id,
        agent=agent,
        model=model,
        plan=plan,
        start=start,
        end=end,
        limit=limit,
        cursor=cursor,
    )
    page = parse_page(await _search(stores, path, body), kind="failures", limit=limit)
    return FailurePage(items=[known(Failure, f) for f in page.items], next_cursor=page.next_cursor)


@router.get(
    "/failures/groups",
    response_model=list[FailureGroup],
    summary="Similar failures, grouped by signature",
    dependencies=[requires(Role.VIEWER)],
)
async def failure_groups(
    tenant_id: TenantId,
    stores: Stores,
    kind: Term = None,
    start: datetime | None = None,
    end: datetime | None = None,
    size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[FailureGroup]:
    """The biggest groups of failures with the same signature, with a sample of each."""
    path, body = stores.search.failure_groups(tenant_id, kind=kind, start=start, end=end, size=size)
    return [known(FailureGroup, g) for g in parse_groups(await _search(stores, path, body))]
