"""``GET /api/v1/analytics/budgets``: tokens and cost per workflow and tenant against the budgets.

A workflow's budget is its definition's ``policies.budget`` (``max_cost_usd``, ``max_tokens``;
the worker halts a run that reaches it, failure kind ``budget_exceeded``). A run's limits are
those it started with (``ExecutionStarted``, when set) else its workflow version's
``policies.budget``; its usage is the read model's run totals (the sum of its steps' LLM tokens
and cost, which the worker records on ``StepCompleted``). Only a run whose totals are zero (its
steps were recorded before ``StepCompleted`` carried usage) is counted from its LLM-call spans
in OpenSearch instead. For the runs started in a
window: per workflow the runs, tokens and cost, the largest run, the limits of its latest run,
the largest share of a limit any run used, how many runs came within 80 % of a limit and how
many were stopped by one; and the tenant's totals. Omium has no tenant-wide budget setting, so
the tenant row has totals and no limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import BaseModel

from omium.gateway._policy import TenantId, requires
from omium.gateway._principal import Role
from omium.gateway.api.read_common import Stores, pg_connection
from omium.gateway.errors import MalformedRequestError
from omium.projections import ReadStores
from omium.projections.opensearch import alias

router = APIRouter(prefix="/analytics", tags=["analytics"])

NEAR_SHARE = 0.8
"""A run that used this share of a limit (or more) is near it."""
MAX_WINDOW = timedelta(days=366)
MAX_RUNS = 5000


class WorkflowBudget(BaseModel):
    """One workflow's usage in the window against its budget."""

    workflow_id: str | None
    name: str | None
    runs: int
    runs_with_budget: int
    tokens: int
    cost_usd: float
    max_run_tokens: int
    max_run_cost_usd: float
    avg_run_cost_usd: float
    token_limit: int | None
    cost_limit_usd: float | None
    peak_token_share: float | None
    peak_cost_share: float | None
    near_limit: int
    exceeded: int


class TenantBudget(BaseModel):
    """The tenant's totals in the window (no tenant-wide limit exists)."""

    runs: int
    runs_with_budget: int
    tokens: int
    cost_usd: float
    near_limit: int
    exceeded: int


class BudgetReport(BaseModel):
    """Usage against budgets for runs started between ``start`` and ``end``."""

    start: datetime
    end: datetime
    near_share: float
    spans_counted: bool
    """Whether LLM-call spans (OpenSearch) were read for runs whose PostgreSQL totals are zero;
    else usage is the PostgreSQL totals alone."""
    truncated: bool
    """Whether the window held more than 5,000 runs (the newest 5,000 are counted)."""
    tenant: TenantBudget
    workflows: list[WorkflowBudget]


_RUNS = """
SELECT e.execution_id, e.workflow_id, w.name, e.total_tokens, e.total_cost_usd,
       coalesce(e.max_tokens,
                (v.definition_json::jsonb #>> '{{policies,budget,max_tokens}}')::bigint)
           AS token_limit,
       coalesce(e.max_cost_usd,
                (v.definition_json::jsonb #>> '{{policies,budget,max_cost_usd}}')::float8)
           AS cost_limit_usd,
       EXISTS (SELECT 1 FROM {s}.failures f
               WHERE f.tenant_id = e.tenant_id AND f.execution_id = e.execution_id
                 AND f.kind = 'budget_exceeded') AS exceeded
FROM {s}.executions e
LEFT JOIN {s}.workflows w ON w.tenant_id = e.tenant_id AND w.workflow_id = e.workflow_id
LEFT JOIN {s}.workflow_versions v ON v.tenant_id = e.tenant_id
     AND v.workflow_id = e.workflow_id AND v.version = e.workflow_version
WHERE e.tenant_id = %(t)s AND e.started_at >= %(start)s AND e.started_at < %(end)s
ORDER BY e.started_at DESC
LIMIT %(limit)s
"""


@dataclass
class _Run:
    workflow_id: str | None
    name: str | None
    tokens: int
    cost_usd: float
    token_limit: int | None
    cost_limit_usd: float | None
    exceeded: bool

    def share(self, used: float, limit: float | None) -> float | None:
        return used / limit if limit else None


async def _span_usage(
    stores: ReadStores, tenant_id: str, start: datetime, ids: list[str]
) -> dict[str, tuple[int, float]] | None:
    """Tokens and cost of each run's LLM calls (OpenSearch spans); ``None``: not available."""
    if not ids:
        return {}
    body = {
        "size": 0,
        "query": {
            "bool": {
                "filter": [
                    {"term": {"tenant_id": tenant_id}},
                    {"term": {"kind": "llm_call"}},
                    {"terms": {"execution_id": ids}},
                    {"range": {"start_time": {"gte": start.isoformat()}}},
                ]
            }
        },
        "aggs": {
            "runs": {
                "terms": {"field": "execution_id", "size": len(ids)},
                "aggs": {
                    "tokens_in": {"sum": {"field": "tokens_in"}},
                    "tokens_out": {"sum": {"field": "tokens_out"}},
                    "cost": {"sum": {"field": "cost_usd"}},
                },
            }
        },
    }
    # Its own short-lived client: a budget report is rare, and it needs no more than this.
    url = f"/{alias(stores.prefix.lower(), 'spans')}/_search"
    try:
        async with httpx.AsyncClient(base_url=stores.settings.opensearch.url, timeout=10) as http:
            response = await http.post(url, json=body)
    except httpx.HTTPError:
        return None
    if response.status_code == 404:
        return {}  # no span was ever indexed for this deployment
    if response.status_code != 200:
        return None
    buckets = response.json().get("aggregations", {}).get("runs", {}).get("buckets", [])
    return {
        str(b["key"]): (
            int(b["tokens_in"]["value"] + b["tokens_out"]["value"]),
            float(b["cost"]["value"]),
        )
        for b in buckets
    }


def _window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = end or datetime.now(UTC)
    start = start or end - timedelta(days=7)
    if start.tzinfo is None or end.tzinfo is None:
        raise MalformedRequestError("start and end need a time zone (e.g. Z)", reason="query")
    if start >= end:
        raise MalformedRequestError("start must be before end", reason="query")
    if end - start > MAX_WINDOW:
        raise MalformedRequestError("the window is longer than 366 days", reason="query")
    return start, end


@router.get(
    "/budgets",
    response_model=BudgetReport,
    summary="Tokens and cost per workflow and tenant against the workflows' budgets",
    dependencies=[requires(Role.VIEWER)],
)
async def budgets(
    tenant_id: TenantId,
    stores: Stores,
    start: Annotated[datetime | None, Query(description="Default: 7 days before end.")] = None,
    end: Annotated[datetime | None, Query(description="Default: now.")] = None,
) -> BudgetReport:
    """Per workflow (most expensive first) and for the tenant, runs started in the window."""
    start, end = _window(start, end)
    statement = sql.SQL(_RUNS).format(s=sql.Identifier(stores.schema))
    params: dict[str, Any] = {"t": tenant_id, "start": start, "end": end, "limit": MAX_RUNS}
    async with pg_connection(stores) as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(statement, params)
        rows = await cur.fetchall()
    # Runs recorded before StepCompleted carried usage have zero totals: their spans count.
    unrecorded = [
        r["execution_id"] for r in rows if not r["total_tokens"] and not r["total_cost_usd"]
    ]
    spans = await _span_usage(stores, tenant_id, start, unrecorded) if unrecorded else None
    runs: list[_Run] = []
    for row in reversed(rows):  # oldest first: the last run per workflow is the latest
        tokens, cost = (spans or {}).get(row["execution_id"], (0, 0.0))
        runs.append(
            _Run(
                workflow_id=row["workflow_id"],
                name=row["name"],
                tokens=max(int(row["total_tokens"] or 0), tokens),
                cost_usd=max(float(row["total_cost_usd"] or 0.0), cost),
                token_limit=row["token_limit"],
                cost_limit_usd=row["cost_limit_usd"],
                exceeded=bool(row["exceeded"]),
            )
        )
    workflows = _per_workflow(runs)
    tenant = TenantBudget(
        runs=sum(w.runs for w in workflows),
        runs_with_budget=sum(w.runs_with_budget for w in workflows),
        tokens=sum(w.tokens for w in workflows),
        cost_usd=sum(w.cost_usd for w in workflows),
        near_limit=sum(w.near_limit for w in workflows),
        exceeded=sum(w.exceeded for w in workflows),
    )
    return BudgetReport(
        start=start,
        end=end,
        near_share=NEAR_SHARE,
        spans_counted=spans is not None,
        truncated=len(rows) >= MAX_RUNS,
        tenant=tenant,
        workflows=workflows,
    )


def _peak(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _per_workflow(runs: list[_Run]) -> list[WorkflowBudget]:
    groups: dict[str | None, list[_Run]] = {}
    for run in runs:
        groups.setdefault(run.workflow_id, []).append(run)
    out = []
    for workflow_id, group in groups.items():
        latest = group[-1]
        token_shares = [r.share(r.tokens, r.token_limit) for r in group]
        cost_shares = [r.share(r.cost_usd, r.cost_limit_usd) for r in group]
        near = sum(
            1
            for t, c in zip(token_shares, cost_shares, strict=True)
            if (t is not None and t >= NEAR_SHARE) or (c is not None and c >= NEAR_SHARE)
        )
        out.append(
            WorkflowBudget(
                workflow_id=workflow_id,
                name=latest.name,
                runs=len(group),
                runs_with_budget=sum(
                    1 for r in group if r.token_limit is not None or r.cost_limit_usd is not None
                ),
                tokens=sum(r.tokens for r in group),
                cost_usd=sum(r.cost_usd for r in group),
                max_run_tokens=max(r.tokens for r in group),
                max_run_cost_usd=max(r.cost_usd for r in group),
                avg_run_cost_usd=sum(r.cost_usd for r in group) / len(group),
                token_limit=latest.token_limit,
                cost_limit_usd=latest.cost_limit_usd,
                peak_token_share=_peak(token_shares),
                peak_cost_share=_peak(cost_shares),
                near_limit=near,
                exceeded=sum(1 for r in group if r.exceeded),
            )
        )
    out.sort(key=lambda w: (-w.cost_usd, -w.runs, w.workflow_id or ""))
    return out
