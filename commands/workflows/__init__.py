"""Workflows: tenants' named, versioned workflow definitions."""

from commands.workflows._definition import find_cycle, validate_definition
from commands.workflows.application import WorkflowsApplication, WorkflowView
from commands.workflows.domain import Workflow, workflow_id

__all__ = [
    # Aggregate
    "Workflow",
    "workflow_id",
    # Application and views
    "WorkflowView",
    "WorkflowsApplication",
    # Definition checks
    "find_cycle",
    "validate_definition",
]
