"""Workflow events → Avro (area ``workflows``).

The domain registers a workflow together with its first definition, so ``WorkflowRegistered``
carries definition version 1 (``version``, ``definition_json``, ``step_ids``); later versions are
``WorkflowVersionPublished``. ``description`` and ``tags`` come from the definition's own keys when
they have the right type. Who registered or published, the authoring format and a changelog are
not recorded by the domain and stay null.
"""

from __future__ import annotations

from typing import Any

from omium.commands.relay._mapping import (
    PayloadMapping,
    area_mappings,
    json_text,
    sha256_hex,
    string_list,
)
from omium.commands.workflows import Workflow


def _definition_fields(definition: dict[str, Any], version: int) -> dict[str, Any]:
    text = json_text(definition)
    return {
        "version": version,
        "definition_json": text,
        "definition_sha256": sha256_hex(text),
        "step_ids": [step["id"] for step in definition["steps"]],
    }


def workflow_registered(event: Any) -> dict[str, Any]:
    """``WorkflowRegistered``: the name and the first definition."""
    definition = event.definition
    description = definition.get("description")
    return {
        "name": event.name,
        **_definition_fields(definition, event.definition_version),
        "description": description if isinstance(description, str) else None,
        "registered_by": None,
        "tags": string_list(definition.get("tags")),
    }


def workflow_version_published(event: Any) -> dict[str, Any]:
    """``WorkflowVersionPublished``: a later definition version."""
    return {
        **_definition_fields(event.definition, event.definition_version),
        "source_format": None,
        "published_by": None,
        "changelog": None,
    }


MAPPINGS = area_mappings(
    Workflow,
    {
        "WorkflowRegistered": PayloadMapping("WorkflowRegistered", 1, workflow_registered),
        "WorkflowVersionPublished": PayloadMapping(
            "WorkflowVersionPublished", 1, workflow_version_published
        ),
    },
)
"""Stored topic → mapping for every ``Workflow`` event."""
