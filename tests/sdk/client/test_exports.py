"""Pin the public names of ``omium``, ``omium.sdk`` and ``omium.sdk.client`` (STYLE §3).

Adding a name is a deliberate API change: add it here. Removing one breaks users: move it to
``REMOVED`` with the reason.
"""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "omium": {"Client", "AsyncClient"},
    "omium.sdk": {
        "AsyncClient", "Client", "WorkflowDefinition", "WorkflowValidationError",
        "load_workflow", "Completion", "LLMProvider", "OpenAICompatibleProvider",
        "ScriptedProvider",
    },
    "omium.sdk.client": {
        # clients and configuration
        "Client", "AsyncClient", "ClientConfig", "Op", "WorkflowSource", "DEFAULT_BASE_URL",
        "ENV_API_KEY", "ENV_BASE_URL", "ENV_CONFIG_FILE", "ENV_PROFILE", "ENV_TIMEOUT_S",
        "ENV_TOKEN",
        # errors
        "OmiumClientError", "OmiumConnectionError", "CompletionTimeoutError", "OmiumAPIError",
        "InvalidRequestError", "UnauthorizedError", "ForbiddenError", "NotFoundError",
        "ConflictError", "CheckpointPrunedError", "RateLimitedError", "ServiceUnavailableError",
        "ServerError",
        # write-side answers
        "ApiModel", "Accepted", "WorkflowAccepted", "ExecutionAccepted", "CheckpointAccepted",
        "Suggestion", "SuggestionAccepted", "SuggestionList",
        "ForkAccepted",
        "RoundAccepted", "RoundDecision", "PolicyAccepted", "Workflow", "Execution", "Step",
        "Checkpoint", "Approval", "TERMINAL_STATES", "ConsensusRound", "Policy", "ApiKey",
        "IssuedApiKey", "Role", "WhoAmI", "Readiness", "Limits", "LimitsAccepted", "TenantLimits",
        # read-side answers
        "Page", "ExecutionSummary", "Timeline", "TimelineEvent", "StepView", "AuditRecord",
        "RunStats", "RunBucket", "StepStats", "StepBucket", "Span", "Trace", "Failure",
        "FailureGroup", "RunEvent", "IntegrityReport", "ChainBreak",
        # list and search parameters
        "ExecutionFilters", "AuditFilters", "RunStatsQuery", "StepStatsQuery", "SpanFilters",
        "FailureFilters", "FailureGroupQuery",
    },
}  # fmt: skip

REMOVED: dict[str, set[str]] = {name: set() for name in EXPECTED}

CLIENT_METHODS = {
    "send", "request", "close", "register_workflow", "publish_workflow_version",
    "get_workflow", "find_workflows", "get_limits", "set_limits", "start_execution", "start_run",
    "get_execution",
    "complete_execution", "fail_execution", "halt_execution", "cancel_execution",
    "wait_for_completion", "schedule_step", "start_step", "complete_step", "fail_step",
    "create_checkpoint", "get_checkpoint", "get_checkpoint_state", "roll_back", "fork_execution",
    "request_approval", "approve", "reject", "apply_approval_default", "list_executions",
    "iter_executions", "get_timeline", "list_audit", "run_stats", "step_stats", "search_spans",
    "get_trace", "search_failures", "failure_groups", "stream_events", "subscribe", "open_round",
    "verify_execution", "verify_tenant",
    "request_diagnosis", "list_suggestions", "get_suggestion", "approve_suggestion",
    "reject_suggestion",
    "get_round", "cast_vote", "decide_round", "publish_policy", "find_policies", "get_policy",
    "create_api_key", "list_api_keys", "revoke_api_key", "whoami", "ready", "connect",
    "from_profile",
}  # fmt: skip


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_exports_are_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)

    assert set(module.__all__) == EXPECTED[module_name]
    assert len(module.__all__) == len(set(module.__all__)), "a name is listed twice"
    for name in module.__all__:
        assert hasattr(module, name), name
    assert not REMOVED[module_name] & set(module.__all__)


def test_both_clients_offer_the_same_calls() -> None:
    from omium.sdk.client import AsyncClient, Client

    def public(cls: type) -> set[str]:
        return {name for name in vars(cls) if not name.startswith("_")} - {"config"}

    assert public(Client) == public(AsyncClient) == CLIENT_METHODS
