"""Command handlers and queries for workflows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from omium.commands._application import CommandApplication, check_tenant_id, command_handler
from omium.commands.errors import AlreadyExistsError, InvalidCommandError, NotFoundError
from omium.commands.workflows._limits import ConcurrencyLimitsCommands
from omium.commands.workflows.domain import Workflow
from omium.commands.workflows.domain import workflow_id as derive_workflow_id


@dataclass(frozen=True)
class WorkflowView:
    """A workflow definition at one version, as queries return it.

    Attributes:
        id: The workflow id.
        tenant_id: Owning tenant.
        name: Workflow name.
        definition_version: Version of ``definition``.
        latest_version: The newest version.
        definition: The definition (a copy; changing it changes nothing).
        registered_at: When version 1 was registered.
        modified_at: When the latest version was published.
        version: The aggregate version (for ``expected_version``).
    """

    id: UUID
    tenant_id: str
    name: str
    definition_version: int
    latest_version: int
    definition: dict[str, Any]
    registered_at: datetime
    modified_at: datetime
    version: int


class WorkflowsApplication(ConcurrencyLimitsCommands, CommandApplication):
    """Registers workflows and publishes new versions of their definitions.

    Also keeps each tenant's concurrency limits (``set_concurrency_limits``).
    """

    name = "Workflows"

    @command_handler
    def register_workflow(
        self,
        tenant_id: str,
        *,
        name: str,
        definition: Mapping[str, Any],
        idempotency_key: str | None = None,
    ) -> Workflow:
        """Register a workflow with its first definition.

        Args:
            tenant_id: The caller's tenant.
            name: Unique per tenant.
            definition: Steps (``id``, ``agent``, ``needs``) and any other settings.
            idempotency_key: Makes a retried request return the first result.

        Returns:
            A :class:`~omium.commands.CommandResult` for the new workflow (version 1).

        Raises:
            AlreadyExistsError: The tenant already has a workflow with this name.
            InvalidCommandError: The name or definition is invalid.
        """
        Workflow.check_name(name)
        wid = derive_workflow_id(tenant_id, name)
        if self.exists(wid):
            raise AlreadyExistsError(wid, aggregate_type="Workflow")
        return Workflow.register(tenant_id=tenant_id, name=name, definition=definition)

    @command_handler
    def publish_workflow_version(
        self,
        tenant_id: str,
        workflow_id: UUID,
        *,
        definition: Mapping[str, Any],
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Workflow:
        """Publish a new version of a workflow's definition.

        Args:
            tenant_id: The caller's tenant.
            workflow_id: The workflow.
            definition: The new definition.
            expected_version: The aggregate version the caller saw, to refuse lost updates.
            idempotency_key: Makes a retried request return the first result.

        Returns:
            A :class:`~omium.commands.CommandResult`; ``version`` is the new aggregate version.

        Raises:
            NotFoundError: No such workflow for this tenant.
            InvalidCommandError: The definition is invalid.
            ConflictError: The workflow changed since ``expected_version``.
        """
        workflow = self.load(Workflow, tenant_id, workflow_id, expected_version=expected_version)
        workflow.publish_version(definition)
        return workflow

    def get_workflow(
        self, tenant_id: str, workflow_id: UUID, *, definition_version: int | None = None
    ) -> WorkflowView:
        """Return a workflow at its latest (or a given) definition version.

        Raises:
            NotFoundError: No such workflow for this tenant.
            InvalidCommandError: No such definition version.
        """
        check_tenant_id(tenant_id)
        workflow = self.load(Workflow, tenant_id, workflow_id)
        number = workflow.latest_version if definition_version is None else definition_version
        if number not in workflow.definitions:
            raise InvalidCommandError(
                f"workflow {workflow_id} has no version {number}",
                reason="unknown_version",
                field="definition_version",
            )
        return WorkflowView(
            id=workflow.id,
            tenant_id=workflow.tenant_id,
            name=workflow.name,
            definition_version=number,
            latest_version=workflow.latest_version,
            definition=workflow.definitions[number],
            registered_at=workflow.created_on,
            modified_at=workflow.modified_on,
            version=workflow.version,
        )

    def find_workflow(self, tenant_id: str, name: str) -> WorkflowView:
        """Return the tenant's workflow with this name, at its latest version.

        Raises:
            NotFoundError: The tenant has no workflow with this name.
        """
        check_tenant_id(tenant_id)
        wid = derive_workflow_id(tenant_id, name)
        if not self.exists(wid):
            raise NotFoundError(wid, aggregate_type="Workflow")
        return self.get_workflow(tenant_id, wid)
