"""``GET /audit``: the tenant's audit trail (every command, accepted or refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from omium.gateway._policy import TenantId, requires
from omium.gateway._principal import Role
from omium.gateway.api.read_common import Stores, pg_connection

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditRecord(BaseModel):
    """One recorded command."""

    event_id: str
    occurred_at: datetime
    actor: str
    actor_kind: str
    roles: list[str]
    command: str
    target: str | None
    result: str
    reason: str | None
    status_code: int | None
    request_id: str | None
    idempotency_key: str | None
    source_ip: str | None


class AuditPage(BaseModel):
    """A page of audit records, newest first."""

    items: list[AuditRecord]
    next_cursor: str | None


@router.get(
    "",
    response_model=AuditPage,
    summary="Query the audit trail",
    dependencies=[requires(Role.VIEWER)],
)
async def audit_log(
    tenant_id: TenantId,
    stores: Stores,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    command: Annotated[str | None, Query(max_length=200)] = None,
    result: Literal["accepted", "refused"] | None = None,
    target: Annotated[str | None, Query(max_length=500)] = None,
    after: datetime | None = None,
    before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> AuditPage:
    """Audit records filtered by actor, command, result, target and time, newest first."""
    async with pg_connection(stores) as conn:
        page = await stores.queries.audit(
            conn,
            tenant_id,
            actor=actor,
            command=command,
            result=result,
            target=target,
            after=after,
            before=before,
            limit=limit,
            cursor=cursor,
        )
    items = [AuditRecord.model_validate({**r, "event_id": str(r["event_id"])}) for r in page.items]
    return AuditPage(items=items, next_cursor=page.next_cursor)
