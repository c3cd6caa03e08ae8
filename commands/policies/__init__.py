"""Policies: versioned Rego modules with an enforcement mode."""

from omium.commands.policies._rego import check_module_compiles, module_package
from omium.commands.policies.application import PoliciesApplication, PolicyView
from omium.commands.policies.domain import Policy, PolicyMode, policy_id

__all__ = [
    # Aggregate
    "Policy",
    "PolicyMode",
    "policy_id",
    # Application and views
    "PoliciesApplication",
    "PolicyView",
    # Rego checks
    "check_module_compiles",
    "module_package",
]
