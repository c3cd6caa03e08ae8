"""``/api/v1/limits``: the tenant's concurrency limits, read and changed at run time.

Runs and steps over a limit wait in line (in order) in the orchestrator's admission stage; a
raised limit admits the waiting ones at once, a lowered one stops nothing that runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from omium.commands.workflows import LimitsView
from omium.gateway._openapi import problems
from omium.gateway._policy import requires
from omium.gateway._principal import Role
from omium.gateway.api._models import EventNames, VersionAfter, VersionedRequest, accepted_fields
from omium.gateway.api._support import Create, Read

router = APIRouter(prefix="/limits", tags=["limits"])

Limit = Annotated[int | None, Field(default=None, strict=True, ge=1, le=1_000_000)]


class Limits(BaseModel):
    """Limits of one level (the tenant, or one workflow's runs); null: unlimited."""

    max_running_executions: Limit = Field(
        default=None, description="Runs running at once; more wait in line, in order."
    )
    max_concurrent_steps: Limit = Field(
        default=None, description="Steps running at once; more wait in line, in order."
    )


class SetLimits(VersionedRequest):
    """The tenant's whole set of limits (it replaces the previous one)."""

    max_running_executions: Limit = Field(default=None, description="Tenant-wide; null: none.")
    max_concurrent_steps: Limit = Field(default=None, description="Tenant-wide; null: none.")
    workflows: dict[UUID, Limits] = Field(
        default_factory=dict,
        max_length=1000,
        description="Workflow id -> limits of that workflow's runs (besides the tenant's).",
    )


class TenantLimits(Limits):
    """The tenant's concurrency limits; ``version`` 0: never set (unlimited)."""

    workflows: dict[str, Limits] = Field(default_factory=dict)
    version: int = Field(description="Version of the limits (the ETag); 0 when never set.")
    modified_at: datetime | None = None

    @classmethod
    def of(cls, view: LimitsView) -> TenantLimits:
        """The answer for a limits view."""
        return cls(
            max_running_executions=view.max_running_executions,
            max_concurrent_steps=view.max_concurrent_steps,
            workflows={key: Limits(**value) for key, value in view.workflows.items()},
            version=view.version,
            modified_at=view.modified_at,
        )


class LimitsAccepted(BaseModel):
    """The limits were set; the orchestrator applies them as soon as it reads the event."""

    version: VersionAfter
    events: EventNames


@router.get(
    "",
    response_model=TenantLimits,
    summary="The tenant's concurrency limits",
    dependencies=[requires(Role.VIEWER)],
)
async def get_limits(call: Read) -> TenantLimits:
    """Running executions and concurrent steps allowed, tenant-wide and per workflow."""
    return TenantLimits.of(await call.run(call.apps.workflows.get_concurrency_limits))


@router.put(
    "",
    response_model=LimitsAccepted,
    summary="Set the tenant's concurrency limits (effective at once)",
    dependencies=[requires(Role.OPERATOR, command="limits.set")],
    responses=problems(409),
)
async def set_limits(body: SetLimits, call: Create) -> LimitsAccepted:
    """Replace the limits; runs and steps over them wait in line, a raise admits at once."""
    result = await call.create(
        call.apps.workflows.set_concurrency_limits,
        lambda _: "/api/v1/limits",
        max_running_executions=body.max_running_executions,
        max_concurrent_steps=body.max_concurrent_steps,
        workflows={
            str(workflow): limits.model_dump() for workflow, limits in body.workflows.items()
        },
        expected_version=body.expected_version,
    )
    return LimitsAccepted(**accepted_fields(result))
