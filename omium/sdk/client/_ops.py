"""Every gateway call as an :class:`~omium.sdk.client._http.Op`: path, body and answer type.

The sync and async clients wrap these one-liners with typed signatures; the knowledge of routes
and bodies lives only here.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from omium.sdk.client._http import (
    API,
    Op,
    list_parser,
    model_parser,
    none_parser,
    raw_parser,
    segment,
)
from omium.sdk.client._models import (
    ApiKey,
    CheckpointAccepted,
    ConsensusRound,
    Execution,
    ExecutionAccepted,
    ForkAccepted,
    IssuedApiKey,
    LimitsAccepted,
    Policy,
    PolicyAccepted,
    Readiness,
    RoundAccepted,
    RoundDecision,
    TenantLimits,
    WhoAmI,
    Workflow,
    WorkflowAccepted,
)
from omium.sdk.client._models import Checkpoint as CheckpointModel
from omium.sdk.client._read_models import (
    AuditRecord,
    ExecutionSummary,
    Failure,
    FailureGroup,
    IntegrityReport,
    Page,
    RunStats,
    Span,
    StepStats,
    Timeline,
    Trace,
)


def body(**fields: Any) -> dict[str, Any]:
    """A JSON body without the fields left at ``None``."""
    return {name: value for name, value in fields.items() if value is not None}


def _iso(value: datetime | str) -> str:
    return value.isoformat() if isinstance(value, datetime) else value


def _execution(execution_id: object, *rest: object) -> str:
    return "/".join([f"{API}/executions/{segment(execution_id)}", *map(segment, rest)])


def _accepted(path: str, payload: dict[str, Any]) -> Op[ExecutionAccepted]:
    return Op("POST", path, model_parser(ExecutionAccepted), json=payload, command=True)


# --- workflows --------------------------------------------------------------------------------


def register_workflow(name: str, definition: dict[str, Any]) -> Op[WorkflowAccepted]:
    """``POST /workflows``."""
    return Op(
        "POST",
        f"{API}/workflows",
        model_parser(WorkflowAccepted),
        json={"name": name, "definition": definition},
        command=True,
    )


def publish_workflow_version(
    workflow_id: object, definition: dict[str, Any], expected_version: int | None
) -> Op[WorkflowAccepted]:
    """``POST /workflows/{id}/versions``."""
    return Op(
        "POST",
        f"{API}/workflows/{segment(workflow_id)}/versions",
        model_parser(WorkflowAccepted),
        json=body(definition=definition, expected_version=expected_version),
        command=True,
    )


def get_workflow(workflow_id: object, definition_version: int | None) -> Op[Workflow]:
    """``GET /workflows/{id}``."""
    return Op(
        "GET",
        f"{API}/workflows/{segment(workflow_id)}",
        model_parser(Workflow),
        params={"definition_version": definition_version},
    )


def get_limits() -> Op[TenantLimits]:
    """``GET /limits``."""
    return Op("GET", f"{API}/limits", model_parser(TenantLimits))


def set_limits(
    *,
    max_running_executions: int | None,
    max_concurrent_steps: int | None,
    workflows: Mapping[str, Mapping[str, int | None]] | None,
    expected_version: int | None,
) -> Op[LimitsAccepted]:
    """``PUT /limits``."""
    return Op(
        "PUT",
        f"{API}/limits",
        model_parser(LimitsAccepted),
        json={
            "max_running_executions": max_running_executions,
            "max_concurrent_steps": max_concurrent_steps,
            "workflows": {str(k): dict(v) for k, v in (workflows or {}).items()},
            "expected_version": expected_version,
        },
        command=True,
    )


def find_workflows(name: str | None) -> Op[list[Workflow]]:
    """``GET /workflows``."""
    return Op("GET", f"{API}/workflows", list_parser(Workflow), params={"name": name})


# --- executions: the run ----------------------------------------------------------------------


def start_execution(
    workflow_id: object, workflow_version: int, input: dict[str, Any] | None
) -> Op[ExecutionAccepted]:
    """``POST /executions``."""
    payload = body(workflow_id=str(workflow_id), workflow_version=workflow_version, input=input)
    return Op(
        "POST", f"{API}/executions", model_parser(ExecutionAccepted), json=payload, command=True
    )


def get_execution(execution_id: object) -> Op[Execution]:
    """``GET /executions/{id}``."""
    return Op("GET", _execution(execution_id), model_parser(Execution))


def end_execution(execution_id: object, verb: str, **fields: Any) -> Op[ExecutionAccepted]:
    """``POST /executions/{id}/{complete|fail|halt|cancel}``."""
    return _accepted(_execution(execution_id, verb), body(**fields))


# --- executions: steps, checkpoints, approvals ------------------------------------------------


def schedule_step(execution_id: object, **fields: Any) -> Op[ExecutionAccepted]:
    """``POST /executions/{id}/steps``."""
    return _accepted(_execution(execution_id, "steps"), body(**fields))


def step_command(
    execution_id: object, step_id: str, verb: str, **fields: Any
) -> Op[ExecutionAccepted]:
    """``POST /executions/{id}/steps/{step}/{start|complete|fail}`` and the approval routes."""
    return _accepted(_execution(execution_id, "steps", step_id, *verb.split("/")), body(**fields))


def create_checkpoint(
    execution_id: object,
    *,
    step_id: str,
    position: str,
    state: bytes | None,
    object_key: str | None,
    checksum: str | None,
    size: int | None,
    checkpoint_id: str | None,
    expected_version: int | None,
) -> Op[CheckpointAccepted]:
    """``POST /executions/{id}/checkpoints``; checksum and size are computed for inline state."""
    if (state is None) == (object_key is None):
        raise ValueError("give exactly one of state (inline) or object_key (object storage)")
    if state is not None:
        checksum = hashlib.sha256(state).hexdigest()
        size = len(state)
    elif checksum is None or size is None:
        raise ValueError("an object-storage checkpoint needs its checksum and size")
    payload = body(
        step_id=step_id,
        position=position,
        checksum=checksum,
        size=size,
        storage="inline" if state is not None else "object",
        inline_state=None if state is None else base64.b64encode(state).decode("ascii"),
        object_key=object_key,
        checkpoint_id=checkpoint_id,
        expected_version=expected_version,
    )
    return Op(
        "POST",
        _execution(execution_id, "checkpoints"),
        model_parser(CheckpointAccepted),
        json=payload,
        command=True,
    )


def get_checkpoint(execution_id: object, checkpoint_id: str) -> Op[CheckpointModel]:
    """``GET /executions/{id}/checkpoints/{cp}``."""
    return Op(
        "GET", _execution(execution_id, "checkpoints", checkpoint_id), model_parser(CheckpointModel)
    )


def roll_back(
    execution_id: object, checkpoint_id: str, reason: str | None, expected_version: int | None
) -> Op[ExecutionAccepted]:
    """``POST /executions/{id}/rollback``."""
    return _accepted(
        _execution(execution_id, "rollback"),
        body(checkpoint_id=checkpoint_id, reason=reason, expected_version=expected_version),
    )


def fork_execution(
    execution_id: object,
    checkpoint_id: str,
    *,
    workflow_version: int | None,
    state: dict[str, Any] | None,
) -> Op[ForkAccepted]:
    """``POST /executions/{id}/fork``."""
    payload = body(checkpoint_id=checkpoint_id, workflow_version=workflow_version, state=state)
    return Op(
        "POST",
        _execution(execution_id, "fork"),
        model_parser(ForkAccepted),
        json=payload,
        command=True,
    )


def request_approval(
    execution_id: object,
    step_id: str,
    *,
    deadline: datetime | str,
    default_action: str,
    prompt: str | None,
    expected_version: int | None,
    approvers: list[str] | None = None,
    approver_role: str | None = None,
    escalation: Mapping[str, Any] | None = None,
) -> Op[ExecutionAccepted]:
    """``POST /executions/{id}/steps/{step}/approval``."""
    return step_command(
        execution_id,
        step_id,
        "approval",
        deadline=_iso(deadline),
        default_action=default_action,
        prompt=prompt,
        expected_version=expected_version,
        approvers=approvers,
        approver_role=approver_role,
        escalation=None if escalation is None else dict(escalation),
    )


# --- read models ------------------------------------------------------------------------------


def list_executions(**params: Any) -> Op[Page[ExecutionSummary]]:
    """``GET /executions`` (read model)."""
    return Op("GET", f"{API}/executions", model_parser(Page[ExecutionSummary]), params=params)


def get_timeline(execution_id: object, limit: int | None, cursor: str | None) -> Op[Timeline]:
    """``GET /executions/{id}/timeline``."""
    return Op(
        "GET",
        _execution(execution_id, "timeline"),
        model_parser(Timeline),
        params={"limit": limit, "cursor": cursor},
    )


def verify_execution(execution_id: object, store: bool, kafka: bool) -> Op[IntegrityReport]:
    """``GET /executions/{id}/verify``: the run's hash chains, in the event store and on Kafka."""
    return Op(
        "GET",
        _execution(execution_id, "verify"),
        model_parser(IntegrityReport),
        params={"store": store, "kafka": kafka},
    )


def verify_tenant(store: bool, kafka: bool) -> Op[IntegrityReport]:
    """``GET /verify``: every hash chain of the caller's tenant (operators)."""
    return Op(
        "GET",
        f"{API}/verify",
        model_parser(IntegrityReport),
        params={"store": store, "kafka": kafka},
    )


def get_checkpoint_state(execution_id: object, checkpoint_id: str) -> Op[bytes]:
    """``GET /executions/{id}/checkpoints/{cp}/state``: the blob, checked against its checksum."""

    def verified(response: Any) -> bytes:
        data: bytes = response.content
        expected = response.headers.get("X-Checksum-SHA256")
        if expected is not None and hashlib.sha256(data).hexdigest() != expected:
            raise ValueError(f"checkpoint {checkpoint_id} state does not match its checksum")
        return data

    return Op("GET", _execution(execution_id, "checkpoints", checkpoint_id, "state"), verified)


def list_audit(**params: Any) -> Op[Page[AuditRecord]]:
    """``GET /audit``."""
    return Op("GET", f"{API}/audit", model_parser(Page[AuditRecord]), params=params)


def run_stats(**params: Any) -> Op[RunStats]:
    """``GET /analytics/runs``."""
    return Op("GET", f"{API}/analytics/runs", model_parser(RunStats), params=params)


def step_stats(**params: Any) -> Op[StepStats]:
    """``GET /analytics/steps``."""
    return Op("GET", f"{API}/analytics/steps", model_parser(StepStats), params=params)


def search_spans(**params: Any) -> Op[Page[Span]]:
    """``GET /traces/spans``."""
    return Op("GET", f"{API}/traces/spans", model_parser(Page[Span]), params=params)


def get_trace(trace_id: str) -> Op[Trace]:
    """``GET /traces/{id}``."""
    return Op("GET", f"{API}/traces/{segment(trace_id)}", model_parser(Trace))


def search_failures(**params: Any) -> Op[Page[Failure]]:
    """``GET /failures``."""
    return Op("GET", f"{API}/failures", model_parser(Page[Failure]), params=params)


def failure_groups(**params: Any) -> Op[list[FailureGroup]]:
    """``GET /failures/groups``."""
    return Op("GET", f"{API}/failures/groups", list_parser(FailureGroup), params=params)


# --- consensus, policies, keys, probes --------------------------------------------------------


def open_round(**fields: Any) -> Op[RoundAccepted]:
    """``POST /consensus/rounds``."""
    if isinstance(fields.get("deadline"), datetime):
        fields["deadline"] = _iso(fields["deadline"])
    return Op(
        "POST",
        f"{API}/consensus/rounds",
        model_parser(RoundAccepted),
        json=body(**fields),
        command=True,
    )


def get_round(round_id: object) -> Op[ConsensusRound]:
    """``GET /consensus/rounds/{id}``."""
    return Op("GET", f"{API}/consensus/rounds/{segment(round_id)}", model_parser(ConsensusRound))


def cast_vote(round_id: object, **fields: Any) -> Op[RoundAccepted]:
    """``POST /consensus/rounds/{id}/votes``."""
    return Op(
        "POST",
        f"{API}/consensus/rounds/{segment(round_id)}/votes",
        model_parser(RoundAccepted),
        json=body(**fields),
        command=True,
    )


def decide_round(round_id: object, expected_version: int | None) -> Op[RoundDecision]:
    """``POST /consensus/rounds/{id}/decide``."""
    return Op(
        "POST",
        f"{API}/consensus/rounds/{segment(round_id)}/decide",
        model_parser(RoundDecision),
        json=body(expected_version=expected_version),
        command=True,
    )


def publish_policy(**fields: Any) -> Op[PolicyAccepted]:
    """``POST /policies``."""
    return Op(
        "POST", f"{API}/policies", model_parser(PolicyAccepted), json=body(**fields), command=True
    )


def find_policies(name: str | None) -> Op[list[Policy]]:
    """``GET /policies``."""
    return Op("GET", f"{API}/policies", list_parser(Policy), params={"name": name})


def get_policy(policy_id: object, policy_version: int | None) -> Op[Policy]:
    """``GET /policies/{id}``."""
    return Op(
        "GET",
        f"{API}/policies/{segment(policy_id)}",
        model_parser(Policy),
        params={"policy_version": policy_version},
    )


def create_api_key(name: str, role: str) -> Op[IssuedApiKey]:
    """``POST /api-keys``."""
    return Op(
        "POST",
        f"{API}/api-keys",
        model_parser(IssuedApiKey),
        json={"name": name, "role": role},
        command=True,
    )


def list_api_keys() -> Op[list[ApiKey]]:
    """``GET /api-keys``."""
    return Op("GET", f"{API}/api-keys", list_parser(ApiKey))


def revoke_api_key(key_id: str) -> Op[None]:
    """``DELETE /api-keys/{key_id}``."""
    return Op("DELETE", f"{API}/api-keys/{segment(key_id)}", none_parser, command=True)


def whoami() -> Op[WhoAmI]:
    """``GET /whoami``."""
    return Op("GET", f"{API}/whoami", model_parser(WhoAmI))


def ready() -> Op[Readiness]:
    """``GET /ready`` (a 503 answer is returned as the readiness, not raised)."""
    return Op("GET", "/ready", model_parser(Readiness))


def raw(method: str, path: str, *, json: Any, params: Any, command: bool) -> Op[Any]:
    """Any other route: the decoded JSON answer."""
    return Op(method.upper(), path, raw_parser, json=json, params=params, command=command)
