"""``GET /api/v1/whoami``: the caller as the gateway sees it (handy to check a token or key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel

from omium.gateway._policy import requires
from omium.gateway._principal import Principal, Role

router = APIRouter(tags=["identity"])


class WhoAmI(BaseModel):
    """The authenticated caller."""

    subject: str
    tenant_id: str
    roles: list[Role]
    role: Role | None
    method: str
    key_id: str | None


@router.get("/whoami", response_model=WhoAmI, summary="The authenticated caller")
async def whoami(principal: Annotated[Principal, requires(Role.VIEWER)]) -> WhoAmI:
    """Subject, tenant, roles and authentication method of the caller."""
    return WhoAmI(
        subject=principal.subject,
        tenant_id=principal.tenant_id,
        roles=sorted(principal.roles, key=lambda role: role.rank),
        role=principal.role,
        method=principal.method,
        key_id=principal.key_id,
    )
