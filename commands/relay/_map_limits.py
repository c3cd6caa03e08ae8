"""Concurrency limit events (area ``workflows``): set and changed both relay as one type."""

from __future__ import annotations

from typing import Any

from omium.commands.relay._mapping import PayloadMapping, area_mappings
from omium.commands.workflows import ConcurrencyLimits


def limits_set(event: Any) -> dict[str, Any]:
    """``ConcurrencyLimitsSet``/``Changed``: the tenant's whole set of limits."""
    return {
        "max_running_executions": event.max_running_executions,
        "max_concurrent_steps": event.max_concurrent_steps,
        "workflows": [
            {
                "workflow_id": workflow,
                "max_running_executions": limits.get("max_running_executions"),
                "max_concurrent_steps": limits.get("max_concurrent_steps"),
            }
            for workflow, limits in sorted(event.workflows.items())
        ],
    }


MAPPINGS = area_mappings(
    ConcurrencyLimits,
    {
        "ConcurrencyLimitsSet": PayloadMapping("ConcurrencyLimitsSet", 1, limits_set),
        "ConcurrencyLimitsChanged": PayloadMapping("ConcurrencyLimitsSet", 1, limits_set),
    },
)
"""Stored topic → mapping for every ``ConcurrencyLimits`` event."""
