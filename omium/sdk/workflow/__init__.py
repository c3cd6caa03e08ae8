"""Workflow definitions: the YAML/JSON format, its validation and the step graph.

Load a file with :func:`load_workflow`; every problem is reported by a
:class:`WorkflowValidationError` naming the file, the field path and the line.
"""

from omium.kernel.dag import descendants, find_cycle, ready_steps, topological_order
from omium.sdk.workflow._base import FailureKind, RecoveryAction
from omium.sdk.workflow._conditions import (
    ConditionBase,
    ContainsCondition,
    CustomCondition,
    GroundedCondition,
    JsonSchemaCondition,
    MaxTokensCondition,
    NotContainsCondition,
    PostCondition,
    RegexCondition,
)
from omium.sdk.workflow._entrypoints import ENTRYPOINT_PATTERN, resolve_entrypoint
from omium.sdk.workflow._grounded import Claim, ClaimProblem, check_claims, extract_claims
from omium.sdk.workflow._loader import load_workflow, parse_workflow, parse_workflow_dict
from omium.sdk.workflow._model import (
    CONSENSUS_AGENT,
    DEFAULT_RECOVERY,
    AgentLimits,
    AgentSpec,
    ApprovalEscalationSpec,
    ApprovalSpec,
    Backoff,
    Budget,
    CheckpointRetention,
    CheckpointSpec,
    ConsensusSpec,
    Escalation,
    PolicySpec,
    RecoveryRule,
    RecoverySpec,
    RetryPolicy,
    Step,
    StepDefaults,
    WorkflowDefinition,
)
from omium.sdk.workflow._postconditions import (
    CheckResult,
    StepOutput,
    check_postcondition,
    check_postconditions,
    gather_sources,
    output_text,
    register_check,
)
from omium.sdk.workflow.errors import (
    EntrypointError,
    WorkflowIssue,
    WorkflowValidationError,
)

__all__ = [
    # loading
    "load_workflow",
    "parse_workflow",
    "parse_workflow_dict",
    # the definition model
    "WorkflowDefinition",
    "AgentSpec",
    "AgentLimits",
    "Step",
    "StepDefaults",
    "CheckpointSpec",
    "RetryPolicy",
    "Backoff",
    "ConsensusSpec",
    "ApprovalEscalationSpec",
    "ApprovalSpec",
    "PolicySpec",
    "Budget",
    "CheckpointRetention",
    "RecoverySpec",
    "RecoveryRule",
    "Escalation",
    "DEFAULT_RECOVERY",
    "CONSENSUS_AGENT",
    "FailureKind",
    "RecoveryAction",
    # post-condition specifications
    "PostCondition",
    "ConditionBase",
    "JsonSchemaCondition",
    "RegexCondition",
    "MaxTokensCondition",
    "ContainsCondition",
    "NotContainsCondition",
    "GroundedCondition",
    "CustomCondition",
    # checking post-conditions
    "StepOutput",
    "CheckResult",
    "check_postcondition",
    "check_postconditions",
    "register_check",
    "gather_sources",
    "output_text",
    "Claim",
    "ClaimProblem",
    "extract_claims",
    "check_claims",
    # the step graph
    "topological_order",
    "ready_steps",
    "descendants",
    "find_cycle",
    # entry points
    "ENTRYPOINT_PATTERN",
    "resolve_entrypoint",
    # errors
    "WorkflowValidationError",
    "WorkflowIssue",
    "EntrypointError",
]
