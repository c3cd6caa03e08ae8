"""Workflow definitions by (tenant, workflow, version), loaded once from the write side.

A registered definition version never changes, so it is cached for the life of the process.
Definitions that are not Omium workflow files (e.g. a bare ``steps`` list registered through the
API by a client that runs its own steps) are remembered as such: the orchestrator leaves those
runs to whoever drives them.
"""

from __future__ import annotations

import threading
from uuid import UUID

import structlog

from omium.commands import InvalidCommandError, NotFoundError, WorkflowsApplication
from omium.sdk.workflow import WorkflowDefinition, WorkflowValidationError, parse_workflow_dict

log = structlog.get_logger(__name__)


class DefinitionCache:
    """Parsed workflow definitions, loaded on first use.

    Args:
        workflows: The workflows application to load them from.
    """

    def __init__(self, workflows: WorkflowsApplication) -> None:
        """Load from ``workflows``."""
        self._workflows = workflows
        self._cache: dict[tuple[str, str, int], WorkflowDefinition | None] = {}
        self._lock = threading.Lock()

    def get(self, tenant_id: str, workflow_id: str, version: int) -> WorkflowDefinition | None:
        """The definition, or ``None`` when there is no Omium workflow definition to run.

        A run may name a workflow that does not exist (the write side does not require one) or
        one that is not an Omium workflow file; neither is Omium's to drive.

        Raises:
            EventStoreError: The event store is unavailable (not cached; try again).
        """
        key = (tenant_id, str(workflow_id), int(version))
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        definition: WorkflowDefinition | None = None
        try:
            view = self._workflows.get_workflow(
                tenant_id, UUID(str(workflow_id)), definition_version=int(version)
            )
            definition = parse_workflow_dict(view.definition)
        except (NotFoundError, InvalidCommandError) as exc:
            log.info(
                "definitions.unknown_workflow",
                tenant_id=tenant_id,
                workflow_id=str(workflow_id),
                version=version,
                error=str(exc),
            )
        except WorkflowValidationError as exc:
            log.info(
                "definitions.not_a_workflow",
                workflow_id=str(workflow_id),
                version=version,
                error=str(exc),
            )
        with self._lock:
            self._cache[key] = definition
        return definition

    def require(self, tenant_id: str, workflow_id: str, version: int) -> WorkflowDefinition:
        """The definition of a run the orchestrator drives.

        Raises:
            LookupError: The definition is not an Omium workflow definition.
        """
        definition = self.get(tenant_id, workflow_id, version)
        if definition is None:
            raise LookupError(f"workflow {workflow_id} v{version} is not an Omium workflow")
        return definition
