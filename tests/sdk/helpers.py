"""Shared test data for the SDK tests."""

from __future__ import annotations

from typing import Any

MINIMAL_DEFINITION: dict[str, Any] = {
    "name": "minimal",
    "agents": {
        "a": {"entrypoint": "tests.sdk.helpers:agent"},
        "b": {"entrypoint": "tests.sdk.helpers:agent", "model": "gpt-4o-mini"},
    },
    "steps": [
        {"id": "one", "agent": "a"},
        {"id": "two", "agent": "b"},
        {"id": "three", "agent": "a"},
    ],
}


def agent(context: Any) -> str:
    """A do-nothing agent, so the entry points above resolve."""
    return "ok"
