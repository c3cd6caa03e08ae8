"""``/api/v1/policies``: publish versions of the tenant's Rego policies, read them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field, StringConstraints

from omium.commands import CommandResult, InvalidCommandError, NotFoundError
from omium.commands.policies import PolicyView
from omium.gateway._openapi import created, link, problems
from omium.gateway._policy import requires
from omium.gateway._principal import Role
from omium.gateway.api._models import (
    MAX_VERSION,
    EventNames,
    Identifier,
    RequestModel,
    Text,
    Version,
    VersionAfter,
    accepted_fields,
    location,
)
from omium.gateway.api._support import Create, Read

router = APIRouter(prefix="/policies", tags=["policies"])

MAX_MODULE_CHARS = 256 * 1024

RegoModule = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=MAX_MODULE_CHARS)
]


class PublishPolicy(RequestModel):
    """A policy version: the first one creates the policy, later ones follow it."""

    name: Identifier = Field(description="Unique within the tenant.")
    module: RegoModule = Field(
        description="Rego source starting with 'package <path>'; it must compile."
    )
    mode: Literal["deny", "warn"] = Field(description="deny halts the run; warn records.")
    description: Text | None = None
    expected_version: Version | None = Field(
        default=None,
        description="The policy's aggregate version the caller saw; 0: the policy must be new.",
    )


class PolicyAccepted(BaseModel):
    """A published policy version."""

    policy_id: UUID
    policy_version: int = Field(description="The version just published (1, 2, ...).")
    package: str = Field(description="The module's package; evaluate data.<package>.")
    version: VersionAfter
    events: EventNames

    @classmethod
    def of(cls, result: CommandResult) -> PolicyAccepted:
        """The answer for a ``publish_policy`` result."""
        return cls(
            policy_id=result.aggregate_id,
            policy_version=result.data["policy_version"],
            package=result.data["package"],
            **accepted_fields(result),
        )


class Policy(BaseModel):
    """One version of a policy."""

    policy_id: UUID
    name: str
    policy_version: int
    latest_version: int
    module: str
    module_sha256: str
    package: str
    mode: str
    description: str | None
    created_at: datetime
    modified_at: datetime
    version: int = Field(description="Aggregate version (the ETag), for expected_version.")

    @classmethod
    def of(cls, view: PolicyView) -> Policy:
        """The answer for a policy view."""
        return cls(
            policy_id=view.id,
            name=view.name,
            policy_version=view.policy_version,
            latest_version=view.latest_version,
            module=view.module,
            module_sha256=view.module_sha256,
            package=view.package,
            mode=view.mode,
            description=view.description,
            created_at=view.created_at,
            modified_at=view.modified_at,
            version=view.version,
        )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PolicyAccepted,
    summary="Publish a policy version",
    dependencies=[requires(Role.OPERATOR, command="policies.publish")],
    responses={
        **problems(409),
        **created(
            "The policy version was published.",
            GetPolicy=link("/policies/{policy_id}", policy_id="$response.body#/policy_id"),
        ),
    },
)
async def publish_policy(body: PublishPolicy, call: Create) -> PolicyAccepted:
    """Publish a version; a module that does not compile answers 422 invalid-policy."""
    result = await call.create(
        call.apps.policies.publish_policy,
        lambda pid: location("policies", pid),
        name=body.name,
        module=body.module,
        mode=body.mode,
        description=body.description,
        expected_version=body.expected_version,
    )
    return PolicyAccepted.of(result)


@router.get(
    "",
    response_model=list[Policy],
    summary="Find the tenant's policy by name",
    dependencies=[requires(Role.VIEWER)],
)
async def find_policy(
    call: Read, name: Annotated[Identifier, Query(description="The policy's name.")]
) -> list[Policy]:
    """The policy with this name at its latest version: a list of one, or empty."""
    try:
        view = await call.run(call.apps.policies.find_policy, name)
    except NotFoundError:
        return []
    return [Policy.of(view)]


@router.get(
    "/{policy_id}",
    response_model=Policy,
    summary="Read a policy",
    dependencies=[requires(Role.VIEWER)],
)
async def get_policy(
    policy_id: UUID,
    call: Read,
    policy_version: Annotated[
        int | None, Query(ge=1, le=MAX_VERSION, description="Default: the latest version.")
    ] = None,
) -> Policy:
    """A policy at its latest (or the given) version."""
    try:
        view = await call.run(
            call.apps.policies.get_policy, policy_id, policy_version=policy_version
        )
    except InvalidCommandError as exc:
        if exc.reason != "unknown_version":
            raise
        raise NotFoundError(
            f"{policy_id}?policy_version={policy_version}", aggregate_type="PolicyVersion"
        ) from None
    return Policy.of(view)
