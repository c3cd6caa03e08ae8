"""Compliance reads for the web UI's portal: policies with their violation counts, a policy's
violations, and the approvals history. From the PostgreSQL read model, tenant-scoped.

``GET /policies`` (write side) finds one policy by name; these list what the read model has
seen: every policy of the tenant with how often it denied or warned, and who decided which
human approval when.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import BaseModel

from omium.gateway._policy import TenantId, requires
from omium.gateway._principal import Role
from omium.gateway.api.read_common import Stores, pg_connection

router = APIRouter(prefix="/compliance", tags=["compliance (read model)"])

Limit = Annotated[int, Query(ge=1, le=200, description="Most items, newest first.")]


class PolicySummary(BaseModel):
    """A policy at its latest version, with what it has found."""

    policy_id: str
    latest_version: int
    package: str
    module: str
    mode: str
    description: str | None
    published_by: str | None
    published_at: datetime
    violations: int
    warnings: int
    evaluation_errors: int
    last_violation_at: datetime | None


class Violation(BaseModel):
    """A policy's finding about a step output or an LLM call (or a failed evaluation)."""

    event_id: str
    kind: str
    policy_id: str
    policy_version: int | None
    mode: str | None
    execution_id: str | None
    step_id: str | None
    span_id: str | None
    messages: list[str]
    error: str | None
    occurred_at: datetime


class ApprovalDecision(BaseModel):
    """One event of a human approval: requested, escalated, granted or rejected (who, when)."""

    event_id: str
    event_type: str
    execution_id: str
    step_id: str | None
    occurred_at: datetime
    decided_by: str | None
    comment: str | None
    by_default: bool | None
    prompt: str | None
    approvers: list[str] | None = None
    """Who may decide (requested, escalated: the escalation's deciders)."""


async def _rows(stores: Stores, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    statement = sql.SQL(query).format(s=sql.Identifier(stores.schema))
    async with pg_connection(stores) as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(statement, params)
        return await cur.fetchall()


@router.get(
    "/policies",
    response_model=list[PolicySummary],
    summary="The tenant's policies with violation counts",
    dependencies=[requires(Role.VIEWER)],
)
async def policies(tenant_id: TenantId, stores: Stores) -> list[PolicySummary]:
    """Every policy the read model has seen, by id, with deny/warn/error counts."""
    rows = await _rows(
        stores,
        "SELECT p.policy_id, p.latest_version, p.rego_package AS package, "
        "p.rego_module AS module, p.mode, p.description, p.published_by, p.published_at, "
        "count(v.event_id) FILTER (WHERE v.kind = 'violated' AND v.mode = 'deny') "
        "  AS violations, "
        "count(v.event_id) FILTER (WHERE v.kind = 'violated' AND v.mode IS DISTINCT FROM 'deny') "
        "  AS warnings, "
        "count(v.event_id) FILTER (WHERE v.kind <> 'violated') AS evaluation_errors, "
        "max(v.occurred_at) AS last_violation_at "
        "FROM {s}.policies p LEFT JOIN {s}.policy_violations v "
        "  ON v.tenant_id = p.tenant_id AND v.policy_id = p.policy_id "
        "WHERE p.tenant_id = %(t)s GROUP BY p.tenant_id, p.policy_id ORDER BY p.policy_id "
        "LIMIT 500",
        {"t": tenant_id},
    )
    return [PolicySummary.model_validate(row) for row in rows]


@router.get(
    "/violations",
    response_model=list[Violation],
    summary="Policy violations, newest first",
    dependencies=[requires(Role.VIEWER)],
)
async def violations(
    tenant_id: TenantId,
    stores: Stores,
    policy_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = 50,
) -> list[Violation]:
    """The tenant's violations (of one policy, when given)."""
    rows = await _rows(
        stores,
        "SELECT event_id::text AS event_id, kind, policy_id, policy_version, mode, "
        "execution_id, step_id, span_id, messages, error, occurred_at "
        "FROM {s}.policy_violations WHERE tenant_id = %(t)s "
        "AND (%(p)s::text IS NULL OR policy_id = %(p)s) "
        "ORDER BY occurred_at DESC, event_id LIMIT %(limit)s",
        {"t": tenant_id, "p": policy_id, "limit": limit},
    )
    return [Violation.model_validate(row) for row in rows]


@router.get(
    "/approvals",
    response_model=list[ApprovalDecision],
    summary="Human approvals: who was asked, who decided what, when",
    dependencies=[requires(Role.VIEWER)],
)
async def approvals(
    tenant_id: TenantId, stores: Stores, limit: Limit = 100
) -> list[ApprovalDecision]:
    """The tenant's approval events, newest first."""
    rows = await _rows(
        stores,
        "SELECT event_id::text AS event_id, event_type, execution_id, step_id, occurred_at, "
        "summary->'payload'->>'decided_by' AS decided_by, "
        "summary->'payload'->>'comment' AS comment, "
        "(summary->'payload'->>'by_default')::boolean AS by_default, "
        "summary->'payload'->>'prompt' AS prompt, "
        "summary->'payload'->'approvers' AS approvers "
        "FROM {s}.execution_events WHERE tenant_id = %(t)s "
        "AND event_type IN ('HumanApprovalRequested', 'HumanApprovalEscalated', "
        "'HumanApprovalGranted', 'HumanApprovalRejected') "
        "ORDER BY occurred_at DESC, event_id LIMIT %(limit)s",
        {"t": tenant_id, "limit": limit},
    )
    return [ApprovalDecision.model_validate(row) for row in rows]
