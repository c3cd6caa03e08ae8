"""A tenant's concurrency limits: running executions and concurrent steps, per tenant and workflow.

One ``ConcurrencyLimits`` aggregate per tenant (its id derives from the tenant), changed at any
time with ``set_concurrency_limits``; each change is a ``ConcurrencyLimitsSet`` event carrying the
whole set, so the orchestrator (which enforces them) rebuilds them from the log like the rest.
``None`` is no limit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from omium.commands._application import CommandApplication, check_tenant_id, command_handler
from omium.commands._domain import TenantScoped
from omium.commands.errors import InvalidCommandError, NotFoundError

LIMITS_NAMESPACE = UUID("8d3f0f6a-54c2-4c47-9a5e-1f7a0b6c2d13")
"""Namespace of the tenant-derived (uuid5) ids of ``ConcurrencyLimits``."""

LIMIT_KEYS = ("max_running_executions", "max_concurrent_steps")
MAX_LIMIT = 1_000_000
MAX_WORKFLOW_LIMITS = 1000


def limits_id(tenant_id: str) -> UUID:
    """The id of a tenant's limits aggregate."""
    return uuid5(LIMITS_NAMESPACE, json.dumps(["concurrency-limits", tenant_id]))


def check_limits(limits: Mapping[str, Any], where: str) -> dict[str, int | None]:
    """One level of limits (tenant or a workflow): both keys, each ``None`` or a positive int."""
    unknown = sorted(set(limits) - set(LIMIT_KEYS))
    if unknown:
        raise _invalid(f"{where}: unknown limit(s) {', '.join(unknown)}", where)
    checked: dict[str, int | None] = {}
    for key in LIMIT_KEYS:
        value = limits.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_LIMIT
        ):
            raise _invalid(f"{where}.{key} must be a whole number from 1 to {MAX_LIMIT}", where)
        checked[key] = value
    return checked


class ConcurrencyLimits(TenantScoped, Aggregate):
    """A tenant's concurrency limits (``None``: unlimited).

    Attributes:
        max_running_executions: Runs of the tenant running at once; more wait in a queue.
        max_concurrent_steps: Steps of the tenant running at once; more wait in a queue.
        workflows: Workflow id -> the same two limits for that workflow's runs.
    """

    @staticmethod
    def create_id(tenant_id: str) -> UUID:
        """Derive the id from the tenant: one aggregate per tenant."""
        return limits_id(tenant_id)

    @classmethod
    def first(
        cls,
        *,
        tenant_id: str,
        max_running_executions: int | None,
        max_concurrent_steps: int | None,
        workflows: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> ConcurrencyLimits:
        """The tenant's limits, set for the first time."""
        return cls(
            tenant_id=tenant_id,
            **checked_limits(max_running_executions, max_concurrent_steps, workflows),
        )

    @event("ConcurrencyLimitsSet")
    def __init__(
        self,
        *,
        tenant_id: str,
        max_running_executions: int | None,
        max_concurrent_steps: int | None,
        workflows: dict[str, dict[str, int | None]],
    ) -> None:
        """Apply ``ConcurrencyLimitsSet``: the tenant's first limits."""
        self.tenant_id = tenant_id
        self._apply(max_running_executions, max_concurrent_steps, workflows)

    def set_limits(
        self,
        *,
        max_running_executions: int | None,
        max_concurrent_steps: int | None,
        workflows: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """Replace every limit (an unset one is unlimited)."""
        self._change_limits(
            **checked_limits(max_running_executions, max_concurrent_steps, workflows)
        )

    @event("ConcurrencyLimitsChanged")
    def _change_limits(
        self,
        max_running_executions: int | None,
        max_concurrent_steps: int | None,
        workflows: dict[str, dict[str, int | None]],
    ) -> None:
        self._apply(max_running_executions, max_concurrent_steps, workflows)

    def _apply(
        self,
        max_running_executions: int | None,
        max_concurrent_steps: int | None,
        workflows: dict[str, dict[str, int | None]],
    ) -> None:
        self.max_running_executions = max_running_executions
        self.max_concurrent_steps = max_concurrent_steps
        self.workflows = {key: dict(value) for key, value in workflows.items()}


def checked_limits(
    max_running_executions: int | None,
    max_concurrent_steps: int | None,
    workflows: Mapping[str, Mapping[str, Any]] | None,
) -> dict[str, Any]:
    """The limits as an event carries them, checked (``invalid_limits`` otherwise)."""
    tenant = check_limits(
        {
            "max_running_executions": max_running_executions,
            "max_concurrent_steps": max_concurrent_steps,
        },
        "limits",
    )
    per_workflow: dict[str, dict[str, int | None]] = {}
    for workflow, limits in (workflows or {}).items():
        try:
            key = str(UUID(str(workflow)))
        except ValueError:
            raise _invalid(f"workflows: {workflow!r} is not a workflow id", "workflows") from None
        if not isinstance(limits, Mapping):
            raise _invalid(f"workflows.{key} must be an object", "workflows")
        checked = check_limits(limits, f"workflows.{key}")
        if any(value is not None for value in checked.values()):
            per_workflow[key] = checked
    if len(per_workflow) > MAX_WORKFLOW_LIMITS:
        raise _invalid(f"at most {MAX_WORKFLOW_LIMITS} workflows have limits", "workflows")
    return {**tenant, "workflows": per_workflow}


@dataclass(frozen=True)
class LimitsView:
    """A tenant's concurrency limits as queries return them (``version`` 0: never set)."""

    tenant_id: str
    max_running_executions: int | None = None
    max_concurrent_steps: int | None = None
    workflows: dict[str, dict[str, int | None]] = field(default_factory=dict)
    version: int = 0
    modified_at: datetime | None = None


class ConcurrencyLimitsCommands(CommandApplication):
    """The commands and query of tenants' concurrency limits (mixed into the workflows app)."""

    @command_handler
    def set_concurrency_limits(
        self,
        tenant_id: str,
        *,
        max_running_executions: int | None = None,
        max_concurrent_steps: int | None = None,
        workflows: Mapping[str, Mapping[str, Any]] | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> ConcurrencyLimits:
        """Replace the tenant's concurrency limits (``None``: unlimited); effective at once.

        Raises:
            InvalidCommandError: A limit is not a positive whole number, or a key is unknown.
            ConflictError: The limits changed since ``expected_version``.
        """
        check_tenant_id(tenant_id)
        if not self.exists(limits_id(tenant_id)):
            return ConcurrencyLimits.first(
                tenant_id=tenant_id,
                max_running_executions=max_running_executions,
                max_concurrent_steps=max_concurrent_steps,
                workflows=workflows,
            )
        limits = self.load(
            ConcurrencyLimits, tenant_id, limits_id(tenant_id), expected_version=expected_version
        )
        limits.set_limits(
            max_running_executions=max_running_executions,
            max_concurrent_steps=max_concurrent_steps,
            workflows=workflows,
        )
        return limits

    def get_concurrency_limits(self, tenant_id: str) -> LimitsView:
        """The tenant's limits (all unlimited, version 0, when never set)."""
        check_tenant_id(tenant_id)
        try:
            limits = self.load(ConcurrencyLimits, tenant_id, limits_id(tenant_id))
        except NotFoundError:
            return LimitsView(tenant_id=tenant_id)
        return LimitsView(
            tenant_id=tenant_id,
            max_running_executions=limits.max_running_executions,
            max_concurrent_steps=limits.max_concurrent_steps,
            workflows={key: dict(value) for key, value in limits.workflows.items()},
            version=limits.version,
            modified_at=limits.modified_on,
        )


def _invalid(message: str, field_name: str) -> InvalidCommandError:
    return InvalidCommandError(message, reason="invalid_limits", field=field_name)
