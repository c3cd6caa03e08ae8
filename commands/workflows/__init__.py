"""Workflows: tenants' named, versioned workflow definitions."""

from omium.commands.workflows._definition import validate_definition
from omium.commands.workflows._limits import (
    LIMIT_KEYS,
    ConcurrencyLimits,
    LimitsView,
    limits_id,
)
from omium.commands.workflows.application import WorkflowsApplication, WorkflowView
from omium.commands.workflows.domain import Workflow, workflow_id

__all__ = [
    # Aggregate
    "Workflow",
    "workflow_id",
    "ConcurrencyLimits",
    "limits_id",
    "LIMIT_KEYS",
    "LimitsView",
    # Application and views
    "WorkflowView",
    "WorkflowsApplication",
    # Definition checks
    "validate_definition",
]
