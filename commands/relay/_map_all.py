"""Every area's mappings in one registry (stored topic → mapping)."""

from __future__ import annotations

from omium.commands.relay import (
    _map_consensus,
    _map_executions,
    _map_limits,
    _map_policies,
    _map_suggestions,
    _map_workflows,
)
from omium.commands.relay._mapping import PayloadMapping

ALL_MAPPINGS: dict[str, PayloadMapping] = {
    **_map_workflows.MAPPINGS,
    **_map_limits.MAPPINGS,
    **_map_executions.MAPPINGS,
    **_map_suggestions.MAPPINGS,
    **_map_consensus.MAPPINGS,
    **_map_policies.MAPPINGS,
}
"""The mappings of all four command applications."""
