"""The published JSON Schema of workflow definitions (``schemas/workflow/workflow.schema.json``).

The file is generated from the pydantic model by ``python -m omium.sdk.workflow schema`` and a
test checks it is up to date, so editors and other languages validate exactly what Omium does
(except the cross-field rules: unknown steps and agents, cycles, duplicate ids).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omium.kernel.resources import packaged_path
from omium.sdk.workflow._model import WorkflowDefinition

SCHEMA_ID = "urn:omium:schema:workflow:v1"
"""The ``$id`` of the published schema."""

SCHEMA_PATH = packaged_path("schemas", "workflow", "workflow.schema.json")
"""Where the schema is published (``schemas/workflow/`` in the checkout, package data installed)."""


def workflow_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a workflow definition file."""
    schema = WorkflowDefinition.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }


def render_schema() -> str:
    """The schema as the published file's text (stable formatting, trailing newline)."""
    return json.dumps(workflow_json_schema(), indent=2, ensure_ascii=False) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> bool:
    """Write the schema file if its content changed.

    Args:
        path: Where to write it (the published location by default).

    Returns:
        True when the file was written, False when it was already up to date.
    """
    text = render_schema()
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True
