"""``/api/v1/api-keys``: admins create, list and revoke their tenant's API keys."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict, Field

from omium.gateway._api_keys import ApiKey, ApiKeys
from omium.gateway._policy import Command, TenantId, requires
from omium.gateway._principal import Role

router = APIRouter(prefix="/api-keys", tags=["api-keys"])


class ApiKeyCreate(BaseModel):
    """A key to create; its tenant is always the caller's."""

    # ``forbid``: a ``tenant_id`` (or anything else) in the body is refused, not ignored.
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="What the key is for (printable text).",
    )
    role: Role = Field(description="The key's role; at most the creator's.")


class ApiKeyView(BaseModel):
    """A stored key (never its secret)."""

    key_id: str
    tenant_id: str
    name: str
    role: Role
    created_by: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyView:
        """The view of a stored key."""
        return cls(
            key_id=key.key_id,
            tenant_id=key.tenant_id,
            name=key.name,
            role=key.role,
            created_by=key.created_by,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )


class ApiKeyCreated(ApiKeyView):
    """A new key, with its plaintext: shown once, never retrievable again."""

    key: str = Field(description="Send as the X-API-Key header. Store it now.")


def _keys(request: Request) -> ApiKeys:
    keys: ApiKeys = request.app.state.services.api_keys
    return keys


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    summary="Create an API key (the plaintext is returned once)",
    dependencies=[requires(Role.ADMIN, command="api_keys.create")],
)
async def create_api_key(body: ApiKeyCreate, ctx: Command, request: Request) -> ApiKeyCreated:
    """Create a key in the caller's tenant."""
    issued = await _keys(request).create(ctx.principal, name=body.name, role=body.role)
    ctx.set_target(issued.record.key_id)
    view = ApiKeyView.of(issued.record)
    return ApiKeyCreated(**view.model_dump(), key=issued.plaintext)


@router.get(
    "",
    response_model=list[ApiKeyView],
    summary="List the tenant's API keys",
    dependencies=[requires(Role.ADMIN)],
)
async def list_api_keys(tenant_id: TenantId, request: Request) -> list[ApiKeyView]:
    """Every key of the caller's tenant, revoked ones included."""
    return [ApiKeyView.of(key) for key in await _keys(request).list(tenant_id)]


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an API key",
    dependencies=[requires(Role.ADMIN, command="api_keys.revoke")],
)
async def revoke_api_key(key_id: str, ctx: Command, request: Request) -> None:
    """Revoke one of the tenant's keys at once; another tenant's key answers 404."""
    ctx.set_target(key_id)
    await _keys(request).revoke(ctx.tenant_id, key_id)
