"""The Workflow aggregate: a tenant's named, versioned workflow definition.

Command methods run their ``check_*`` guards and only then call the ``@event`` method whose body
applies the change. Event bodies never validate: they also run when the aggregate is rebuilt
from stored events, and a rule tightened later must not make old history unreadable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from omium.commands._domain import TenantScoped
from omium.commands.errors import InvalidCommandError
from omium.commands.workflows._definition import validate_definition

WORKFLOW_NAMESPACE = UUID("5f0b3c8e-3a1e-4f4e-9a55-0a7f3c1d2e01")
"""Namespace of the name-based (uuid5) workflow ids."""

MAX_NAME_LENGTH = 200


def workflow_id(tenant_id: str, name: str) -> UUID:
    """The id of a tenant's workflow with this name (the same name in two tenants differs)."""
    return uuid5(WORKFLOW_NAMESPACE, json.dumps([tenant_id, name]))


class Workflow(TenantScoped, Aggregate):
    """A named workflow definition with numbered versions (1, 2, ...).

    Attributes:
        tenant_id: Owning tenant.
        name: Unique per tenant; the id is derived from tenant and name.
        definitions: Every published definition by version number.
        latest_version: The highest definition version.
    """

    @staticmethod
    def create_id(tenant_id: str, name: str) -> UUID:
        """Derive the id from the natural key, so a name can be registered only once."""
        return workflow_id(tenant_id, name)

    @classmethod
    def register(cls, *, tenant_id: str, name: str, definition: Mapping[str, Any]) -> Workflow:
        """Register a new workflow with its first definition (version 1).

        Raises:
            InvalidCommandError: The name or the definition is invalid.
        """
        cls.check_name(name)
        return cls(
            tenant_id=tenant_id,
            name=name,
            definition=validate_definition(definition),
            definition_version=1,
        )

    @event("WorkflowRegistered")
    def __init__(
        self, *, tenant_id: str, name: str, definition: dict[str, Any], definition_version: int
    ) -> None:
        """Apply ``WorkflowRegistered``: the workflow with its version 1."""
        self.tenant_id = tenant_id
        self.name = name
        self.definitions: dict[int, dict[str, Any]] = {definition_version: definition}
        self.latest_version = definition_version

    def publish_version(self, definition: Mapping[str, Any]) -> None:
        """Publish a new definition; it gets the next version number.

        Raises:
            InvalidCommandError: The definition is invalid.
        """
        checked = validate_definition(definition)
        self._publish_version(definition_version=self.latest_version + 1, definition=checked)

    @event("WorkflowVersionPublished")
    def _publish_version(self, definition_version: int, definition: dict[str, Any]) -> None:
        self.definitions[definition_version] = definition
        self.latest_version = definition_version

    @staticmethod
    def check_name(name: object) -> None:
        """Refuse empty, padded or overlong names."""
        if (
            not isinstance(name, str)
            or not name.strip()
            or name != name.strip()
            or len(name) > MAX_NAME_LENGTH
        ):
            raise InvalidCommandError(
                f"workflow name must be 1-{MAX_NAME_LENGTH} characters without outer spaces",
                reason="invalid_name",
                field="name",
            )
