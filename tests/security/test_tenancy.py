"""Every read route answers only about the caller's tenant: another tenant's ids are not found,
never counted, never echoed; filters carrying injection attempts are inert.

The owner's run is stored through the API, relayed to Kafka and projected into the PostgreSQL
and Redis read models (as the live projections would), so the routes have something to hide.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.security.fixtures import API, Tenant, TokenFactory

pytestmark = pytest.mark.integration

SECRETS = ("secret plans", "tenant-private")
"""Text only the owner's run holds (its input and checkpoint state)."""


def finished_run(owner: Tenant) -> str:
    """A completed run with a checkpoint; its id."""
    run = owner.run()
    owner.ok(owner.post(f"/executions/{run}/steps/plan/complete", {"output": {"text": "done"}}))
    owner.ok(owner.post(f"/executions/{run}/complete", {"output": {"report": "r"}}))
    return run


def assert_hidden(response: Any, run: str) -> None:
    """Not found, and nothing of the owner's run in the answer."""
    assert response.status_code == 404, response.text
    assert response.json()["type"].endswith(":not-found")
    for secret in SECRETS:
        assert secret not in response.text


@pytest.fixture
def owners_run(
    tenant_factory: Callable[[], Tenant], project_everything: Callable[[], None]
) -> tuple[Tenant, str]:
    """A tenant with a finished run, projected into the read models."""
    owner = tenant_factory()
    run = finished_run(owner)
    project_everything()
    return owner, run


def test_the_owner_reads_its_run_everywhere(owners_run: tuple[Tenant, str]) -> None:
    owner, run = owners_run
    timeline = owner.ok(owner.get(f"/executions/{run}/timeline"))
    state = owner.get(f"/executions/{run}/checkpoints/cp-1/state")
    events = owner.get(f"/executions/{run}/events")
    listed = owner.ok(owner.get("/executions"))

    assert timeline["execution"]["execution_id"] == run
    assert state.status_code == 200 and b"tenant-private" in state.content
    assert events.status_code == 200 and "ExecutionCompleted" in events.text
    assert [item["execution_id"] for item in listed["items"]] == [run]


@pytest.mark.parametrize(
    "path",
    [
        "/executions/{run}",
        "/executions/{run}/timeline",
        "/executions/{run}/checkpoints/cp-1",
        "/executions/{run}/checkpoints/cp-1/state",
        "/executions/{run}/events",
        "/executions/{run}/verify?kafka=false",
    ],
)
def test_another_tenants_run_is_not_found_on_every_read_route(
    owners_run: tuple[Tenant, str], tenant_factory: Callable[[], Tenant], path: str
) -> None:
    _, run = owners_run
    stranger = tenant_factory()
    response = stranger.client.get(API + path.format(run=run), headers=stranger.headers("admin"))
    assert_hidden(response, run)


def test_lists_counts_and_searches_never_include_another_tenants_runs(
    owners_run: tuple[Tenant, str], tenant_factory: Callable[[], Tenant]
) -> None:
    owner, run = owners_run
    stranger = tenant_factory()
    workflow_id = owner.ok(owner.get(f"/executions/{run}"))["workflow_id"]

    answers = {
        "runs": stranger.get("/executions"),
        "runs of the owner's workflow": stranger.get("/executions", workflow_id=workflow_id),
        "run stats": stranger.get("/analytics/runs", bucket="day"),
        "step stats": stranger.get("/analytics/steps", bucket="day"),
        "audit": stranger.get("/audit", target=run),
        "audit by actor": stranger.get("/audit", actor="alice"),
        "spans": stranger.get("/traces/spans", execution_id=run),
        "failures": stranger.get("/failures", execution_id=run),
        "failure groups": stranger.get("/failures/groups"),
        "policies": stranger.get("/policies", name="anything"),
    }

    for name, response in answers.items():
        assert response.status_code in (200, 404), (name, response.text)
        assert run not in response.text, name
        for secret in SECRETS:
            assert secret not in response.text, name
    assert answers["runs"].json()["items"] == []
    for stats in ("run stats", "step stats"):
        buckets = answers[stats].json()["buckets"]
        assert all(not any(isinstance(v, int) and v for v in b.values()) for b in buckets), stats
    owner_stats = owner.ok(owner.get("/analytics/runs", bucket="day"))
    assert sum(bucket["runs"] for bucket in owner_stats["buckets"]) == 1


def test_a_tenant_id_with_a_separator_cannot_reach_another_tenants_stream(
    security_client: TestClient, tokens: TokenFactory, project_everything: Callable[[], None]
) -> None:
    """Redis keys are ``...:exec-events:<tenant>:<run>``: tenant ``a`` asking for run
    ``b:<run>`` must not read tenant ``a:b``'s stream."""
    base = f"t-{uuid.uuid4().hex[:12]}"
    owner = Tenant(security_client, tokens, f"{base}:inner")
    attacker = Tenant(security_client, tokens, base)
    run = finished_run(owner)
    project_everything()

    mine = owner.get(f"/executions/{run}/events")
    theirs = attacker.get(f"/executions/inner:{run}/events")

    assert mine.status_code == 200 and "ExecutionCompleted" in mine.text
    assert theirs.status_code in (404, 422), theirs.text
    assert "ExecutionCompleted" not in theirs.text


@pytest.mark.parametrize(
    "value",
    [
        "' OR '1'='1",
        "x'; DROP TABLE executions; --",
        "%",
        "_",
        "*",
        '{"match_all": {}}',
        "a:*",
        "\\",
        "${jndi:ldap://x}",
    ],
)
def test_injection_attempts_in_filters_are_inert(
    owners_run: tuple[Tenant, str], tenant_factory: Callable[[], Tenant], value: str
) -> None:
    owner, run = owners_run
    stranger = tenant_factory()
    queries: list[tuple[str, dict[str, Any]]] = [
        ("/executions", {"workflow_id": value}),
        ("/executions", {"agent": value}),
        ("/executions", {"label": f"k={value}"}),
        ("/audit", {"actor": value}),
        ("/audit", {"command": value}),
        ("/audit", {"target": value}),
        ("/traces/spans", {"q": value}),
        ("/traces/spans", {"agent": value}),
        ("/failures", {"q": value}),
        ("/workflows", {"name": value}),
        ("/policies", {"name": value}),
    ]
    for path, params in queries:
        for caller in (owner, stranger):
            response = caller.get(path, **params)
            assert response.status_code < 500, (path, params, response.text)
            if response.status_code == 200:
                assert run not in response.text, (path, params)
    # The tables are still there and still answer the owner.
    assert owner.ok(owner.get("/executions"))["items"][0]["execution_id"] == run


def test_tenant_ids_with_redis_glob_characters_get_their_own_rate_limit_bucket(
    security_client: TestClient, tokens: TokenFactory
) -> None:
    for name in ("*", "t-*", "{t}", "t}:key:x", "t\r\nPING"):
        tenant = Tenant(security_client, tokens, name)
        response = tenant.get("/whoami")
        assert response.status_code == 200, (name, response.text)
        assert response.json()["tenant_id"] == name
