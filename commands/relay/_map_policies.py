"""Policy events → Avro (area ``policies``).

``policy_id`` is the policy's name (``budget.max_cost``), which halts and violations refer to; the
envelope's ``aggregate_id`` is the policy's uuid, derived from tenant and name. The domain does not
restrict a policy to targets or record who published it, so those stay null.
"""

from __future__ import annotations

from typing import Any

from omium.commands.policies import Policy
from omium.commands.relay._mapping import PayloadMapping, area_mappings


def policy_published(event: Any) -> dict[str, Any]:
    """``PolicyPublished``: one version of the Rego module and its mode."""
    return {
        "policy_id": event.name,
        "version": event.policy_version,
        "rego_package": event.package,
        "rego_module": event.module,
        "mode": event.mode,
        "targets": None,
        "description": event.description,
        "published_by": None,
    }


MAPPINGS = area_mappings(
    Policy, {"PolicyPublished": PayloadMapping("PolicyPublished", 1, policy_published)}
)
"""Stored topic → mapping for every ``Policy`` event."""
