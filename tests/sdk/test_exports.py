"""Pin the public names of the SDK packages this area owns (STYLE §3).

Adding a name is a deliberate API change: add it here. Removing one breaks users: move it to
``REMOVED`` with the reason.
"""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "omium.sdk.workflow": {
        # loading and the model
        "load_workflow", "parse_workflow", "parse_workflow_dict", "WorkflowDefinition",
        "AgentSpec", "AgentLimits", "Step", "StepDefaults", "CheckpointSpec", "RetryPolicy",
        "Backoff", "ConsensusSpec", "ApprovalSpec", "ApprovalEscalationSpec", "PolicySpec",
        "Budget", "CheckpointRetention", "RecoverySpec", "RecoveryRule",
        "Escalation", "DEFAULT_RECOVERY", "CONSENSUS_AGENT", "FailureKind", "RecoveryAction",
        # post-conditions
        "PostCondition", "ConditionBase", "JsonSchemaCondition", "RegexCondition",
        "MaxTokensCondition", "ContainsCondition", "NotContainsCondition", "GroundedCondition",
        "CustomCondition", "StepOutput", "CheckResult", "check_postcondition",
        "check_postconditions", "register_check", "gather_sources", "output_text", "Claim",
        "ClaimProblem", "extract_claims", "check_claims",
        # graph, entry points, errors
        "topological_order", "ready_steps", "descendants", "find_cycle", "ENTRYPOINT_PATTERN",
        "resolve_entrypoint", "WorkflowValidationError", "WorkflowIssue", "EntrypointError",
    },
    "omium.sdk.providers": {
        "LLMProvider", "Completion", "Message", "MessageLike", "Role", "Tool", "ToolCall",
        "to_messages", "providers_from_settings",
        "calls_for_execution", "current_execution",
        "ScriptedProvider", "Script", "ScriptRule", "Fault", "FaultKind", "ScriptedCall",
        "HALLUCINATION", "OpenAICompatibleProvider", "AnthropicProvider", "RetryPolicy",
        "NO_RETRIES", "count_tokens", "count_prompt_tokens",
        "truncate_to_tokens", "PriceTable", "ModelPrice", "DEFAULT_PRICES", "ProviderError",
        "RateLimitError", "ProviderTimeoutError", "ProviderUnavailableError",
        "ProviderRequestError", "MalformedResponseError", "InjectedFaultError",
        "NoScriptedResponseError", "OverloadedError", "ContextTooLongError", "RefusalError",
    },
}  # fmt: skip

REMOVED: dict[str, set[str]] = {"omium.sdk.workflow": set(), "omium.sdk.providers": set()}


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_exports_are_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)

    assert set(module.__all__) == EXPECTED[module_name]
    assert len(module.__all__) == len(set(module.__all__)), "a name is listed twice"
    for name in module.__all__:
        assert hasattr(module, name), name
    assert not REMOVED[module_name] & set(module.__all__)
