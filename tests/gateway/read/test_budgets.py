"""``GET /analytics/budgets``: tokens and cost per workflow and tenant against run budgets."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest

from tests.gateway.read.conftest import ReadModel, SearchModel
from tests.projections.helpers import T0, Chain, single

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

Auth = Callable[..., dict[str, str]]
ClientFactory = Callable[[], httpx.AsyncClient]
WINDOW = {
    "start": (T0 - timedelta(hours=1)).isoformat(),
    "end": (T0 + timedelta(days=1)).isoformat(),
}


def budgeted_run(
    tenant: str,
    workflow_id: uuid.UUID,
    *,
    steps: int,
    max_tokens: int | None = None,
    max_cost_usd: float | None = None,
    offset_s: int = 0,
) -> Chain:
    """A run whose steps each use 150 tokens and $0.01, started with these limits."""
    chain = Chain(tenant, start=T0 + timedelta(seconds=offset_s))
    chain.add(
        "ExecutionStarted",
        workflow_id=workflow_id,
        labels={},
        max_tokens=max_tokens,
        max_cost_usd=max_cost_usd,
    )
    for n in range(steps):
        step = f"s{n}"
        chain.add("StepScheduled", step_id=step, agent="agents.a:run", depends_on=[])
        chain.add("StepStarted", step_id=step, agent="agents.a:run")
        chain.add(
            "StepCompleted",
            step_id=step,
            duration_ms=10,
            tokens_in=100,
            tokens_out=50,
            cost_usd=0.01,
        )
    return chain


async def test_usage_per_workflow_against_its_budget(
    read_model: ReadModel,
    read_client_factory: ClientFactory,
    auth_factory: Auth,
    tenant_factory: Callable[[], str],
) -> None:
    tenant, other = tenant_factory(), tenant_factory()
    capped, free = uuid.uuid4(), uuid.uuid4()
    over = budgeted_run(tenant, capped, steps=2, max_tokens=200, max_cost_usd=0.05)
    near = budgeted_run(tenant, capped, steps=1, max_tokens=180, max_cost_usd=0.5, offset_s=60)
    unbudgeted = budgeted_run(tenant, free, steps=3)
    theirs = budgeted_run(other, capped, steps=5, max_tokens=10)
    stopped = single(
        "FailureDetected",
        tenant,
        at=T0 + timedelta(seconds=30),
        failure_id=uuid.uuid4(),
        execution_id=uuid.UUID(over.aggregate_id),
        kind="budget_exceeded",
    )
    read_model.project([*over.events, *near.events, *unbudgeted.events, *theirs.events, stopped])
    client = read_client_factory()

    response = await client.get(
        "/api/v1/analytics/budgets", headers=auth_factory(tenant=tenant), params=WINDOW
    )
    assert response.status_code == 200, response.text
    body = response.json()
    rows = {row["workflow_id"]: row for row in body["workflows"]}
    assert set(rows) == {str(capped), str(free)}
    c = rows[str(capped)]
    assert (c["runs"], c["runs_with_budget"], c["tokens"]) == (2, 2, 450)
    assert c["cost_usd"] == pytest.approx(0.03)
    assert (c["max_run_tokens"], c["max_run_cost_usd"]) == (300, pytest.approx(0.02))
    # The limits are those of the latest run; the peak share is the largest any run used.
    assert (c["token_limit"], c["cost_limit_usd"]) == (180, 0.5)
    assert c["peak_token_share"] == pytest.approx(1.5)
    assert c["peak_cost_share"] == pytest.approx(0.4)
    assert (c["near_limit"], c["exceeded"]) == (2, 1)
    f = rows[str(free)]
    assert (f["runs"], f["runs_with_budget"], f["tokens"], f["token_limit"]) == (1, 0, 450, None)
    assert (f["peak_token_share"], f["near_limit"], f["exceeded"]) == (None, 0, 0)
    assert body["tenant"] == {
        "runs": 3,
        "runs_with_budget": 2,
        "tokens": 900,
        "cost_usd": pytest.approx(0.06),
        "near_limit": 2,
        "exceeded": 1,
    }
    # A window without the runs is empty; the other tenant sees only its own run.
    later = await client.get(
        "/api/v1/analytics/budgets",
        headers=auth_factory(tenant=tenant),
        params={
            "start": (T0 + timedelta(days=2)).isoformat(),
            "end": (T0 + timedelta(days=3)).isoformat(),
        },
    )
    assert later.json()["workflows"] == []
    mine = await client.get(
        "/api/v1/analytics/budgets", headers=auth_factory(tenant=other), params=WINDOW
    )
    assert [row["runs"] for row in mine.json()["workflows"]] == [1]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"start": "2025-03-02T00:00:00Z", "end": "2025-03-01T00:00:00Z"}, 400),
        ({"start": "2025-03-01T00:00:00", "end": "2025-03-02T00:00:00"}, 400),
        ({"start": "2020-01-01T00:00:00Z", "end": "2025-01-01T00:00:00Z"}, 400),
        ({"start": "yesterday"}, 422),
    ],
)
async def test_bad_windows_are_client_errors(
    read_client_factory: ClientFactory, auth_factory: Auth, params: dict[str, str], status: int
) -> None:
    client = read_client_factory()
    response = await client.get("/api/v1/analytics/budgets", headers=auth_factory(), params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_budgets_need_a_credential(read_client_factory: ClientFactory) -> None:
    client = read_client_factory()
    assert (await client.get("/api/v1/analytics/budgets")).status_code == 401


async def test_limits_come_from_the_definition_and_usage_from_llm_call_spans(
    read_model: ReadModel,
    search_model: SearchModel,
    read_client_factory: ClientFactory,
    auth_factory: Auth,
    tenant_factory: Callable[[], str],
) -> None:
    """The worker reports tokens on spans and runs record no limits: both are found anyway."""
    tenant = tenant_factory()
    workflow = Chain(tenant)
    definition = {
        "steps": [{"id": "s0", "agent": "a"}],
        "policies": {"budget": {"max_tokens": 100, "max_cost_usd": 0.01}},
    }
    workflow.add(
        "WorkflowRegistered",
        name="capped",
        version=1,
        definition_json=json.dumps(definition),
        definition_sha256="0" * 64,
    )
    run = Chain(tenant, start=T0 + timedelta(seconds=5))
    run.add(
        "ExecutionStarted",
        workflow_id=uuid.UUID(workflow.aggregate_id),
        workflow_version=1,
        labels={},
        max_tokens=None,
        max_cost_usd=None,
    )
    execution = uuid.UUID(run.aggregate_id)
    read_model.project([*workflow.events, *run.events])
    calls = [
        single(
            "SpanRecorded",
            tenant,
            execution_id=execution,
            trace_id=uuid.uuid4().hex,
            span_id=f"{i:016x}",
            kind=kind,
            name=kind,
            tokens_in=40,
            tokens_out=20,
            cost_usd=0.004,
            start_time=T0 + timedelta(seconds=10 + i),
            end_time=T0 + timedelta(seconds=11 + i),
        )
        # The step span repeats its calls' totals: only llm_call spans count.
        for i, kind in enumerate(("llm_call", "llm_call", "step"))
    ]
    search_model.project(calls)
    client = read_client_factory()

    body = (
        await client.get(
            "/api/v1/analytics/budgets", headers=auth_factory(tenant=tenant), params=WINDOW
        )
    ).json()
    assert body["spans_counted"] is True
    (row,) = body["workflows"]
    assert (row["name"], row["token_limit"], row["cost_limit_usd"]) == ("capped", 100, 0.01)
    assert (row["tokens"], row["cost_usd"]) == (120, pytest.approx(0.008))
    assert row["peak_token_share"] == pytest.approx(1.2)
    assert row["peak_cost_share"] == pytest.approx(0.8)
    assert (row["runs_with_budget"], row["near_limit"]) == (1, 1)


async def test_recorded_step_usage_is_the_runs_usage_and_its_spans_are_not_added(
    read_model: ReadModel,
    search_model: SearchModel,
    read_client_factory: ClientFactory,
    auth_factory: Auth,
    tenant_factory: Callable[[], str],
) -> None:
    """StepCompleted carries the step's tokens and cost: a run with totals is not re-counted
    from OpenSearch (no spans are read when no run needs them)."""
    tenant = tenant_factory()
    run = budgeted_run(tenant, uuid.uuid4(), steps=2, max_tokens=1000)
    read_model.project(run.events)
    call = single(
        "SpanRecorded",
        tenant,
        execution_id=uuid.UUID(run.aggregate_id),
        trace_id=uuid.uuid4().hex,
        span_id="0" * 16,
        kind="llm_call",
        name="llm_call",
        tokens_in=4000,
        tokens_out=1000,
        cost_usd=1.0,
        start_time=T0 + timedelta(seconds=10),
        end_time=T0 + timedelta(seconds=11),
    )
    search_model.project([call])
    client = read_client_factory()

    body = (
        await client.get(
            "/api/v1/analytics/budgets", headers=auth_factory(tenant=tenant), params=WINDOW
        )
    ).json()
    assert body["spans_counted"] is False
    (row,) = body["workflows"]
    assert (row["tokens"], row["cost_usd"]) == (300, pytest.approx(0.02))
    assert row["peak_token_share"] == pytest.approx(0.3)
