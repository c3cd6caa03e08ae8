"""The events the write side records, pinned: the relay maps exactly these to Avro schemas.

Changing an event's name or attributes must change this file, the Avro schema and the relay.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from eventsourcing.application import Application

from omium.commands import (
    ConsensusApplication,
    ExecutionsApplication,
    PoliciesApplication,
    WorkflowsApplication,
)
from omium.commands.consensus import ConsensusRound
from omium.commands.executions import Execution
from omium.commands.policies import Policy
from omium.commands.workflows import ConcurrencyLimits, Workflow

# Every event also has the library's originator_id (aggregate id), originator_version
# (aggregate version) and timestamp; the first event of an aggregate also has originator_topic.
LIBRARY_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic"}

CATALOGUE: dict[type, dict[str, list[str]]] = {
    Workflow: {
        "WorkflowRegistered": ["tenant_id", "name", "definition", "definition_version"],
        "WorkflowVersionPublished": ["tenant_id", "definition_version", "definition"],
    },
    Execution: {
        "ExecutionStarted": [
            "tenant_id",
            "workflow_id",
            "workflow_version",
            "input",
            "max_cost_usd",
            "max_tokens",
        ],
        "ExecutionForked": [
            "tenant_id",
            "workflow_id",
            "workflow_version",
            "input",
            "parent_execution_id",
            "parent_workflow_version",
            "forked_from_checkpoint_id",
            "checkpoint_step_id",
            "checkpoint_position",
            "steps",
            "state_edited",
            "start_checkpoint_id",
        ],
        "StepScheduled": ["tenant_id", "step_id", "agent"],
        "StepStarted": ["tenant_id", "step_id", "attempt"],
        "StepCompleted": [
            "tenant_id",
            "step_id",
            "attempt",
            "output",
            "tokens_in",
            "tokens_out",
            "cost_usd",
            "model",
        ],
        "StepFailed": ["tenant_id", "step_id", "attempt", "error", "error_type", "retryable"],
        "CheckpointCreated": [
            "tenant_id",
            "checkpoint_id",
            "step_id",
            "position",
            "checksum",
            "size",
            "storage",
            "inline_state",
            "object_key",
        ],
        "ExecutionRolledBack": ["tenant_id", "checkpoint_id", "step_id", "position", "reason"],
        "CheckpointsPruned": ["tenant_id", "checkpoints", "keep_last", "max_age_s", "pruned_at"],
        "HumanApprovalRequested": [
            "tenant_id",
            "step_id",
            "deadline",
            "default_action",
            "prompt",
            "approvers",
            "approver_role",
            "escalation",
        ],
        "HumanApprovalEscalated": [
            "tenant_id",
            "step_id",
            "approvers",
            "approver_role",
            "deadline",
            "default_action",
            "previous_deadline",
            "escalated_at",
        ],
        "HumanApprovalGranted": ["tenant_id", "step_id", "decided_by", "comment", "by_default"],
        "HumanApprovalRejected": ["tenant_id", "step_id", "decided_by", "comment", "by_default"],
        "ExecutionCompleted": ["tenant_id", "output"],
        "ExecutionFailed": ["tenant_id", "error", "error_type"],
        "ExecutionHalted": ["tenant_id", "reason", "policy_id"],
        "ExecutionCancelled": ["tenant_id", "reason", "requested_by"],
        "RecoverySuggested": [
            "tenant_id",
            "suggestion_id",
            "failure_id",
            "step_id",
            "diagnosis",
            "fix",
            "requested_by",
            "usage",
        ],
        "RecoverySuggestionApproved": [
            "tenant_id",
            "suggestion_id",
            "decided_by",
            "fix",
            "edited",
            "comment",
        ],
        "RecoverySuggestionRejected": ["tenant_id", "suggestion_id", "decided_by", "comment"],
    },
    ConcurrencyLimits: {
        "ConcurrencyLimitsSet": [
            "tenant_id",
            "max_running_executions",
            "max_concurrent_steps",
            "workflows",
        ],
        "ConcurrencyLimitsChanged": [
            "tenant_id",
            "max_running_executions",
            "max_concurrent_steps",
            "workflows",
        ],
    },
    ConsensusRound: {
        "ConsensusRoundOpened": [
            "tenant_id",
            "participants",
            "rule",
            "weights",
            "threshold",
            "k",
            "deadline",
            "subject",
            "execution_id",
        ],
        "VoteCast": ["tenant_id", "participant", "choice", "weight", "rationale"],
        "ConsensusReached": ["tenant_id", "decision", "tally"],
        "ConsensusFailed": ["tenant_id", "reason", "tally"],
    },
    Policy: {
        "PolicyPublished": [
            "tenant_id",
            "name",
            "policy_version",
            "module",
            "module_sha256",
            "package",
            "mode",
            "description",
        ],
    },
}


def test_each_aggregate_defines_exactly_the_catalogued_events() -> None:
    for aggregate, events in CATALOGUE.items():
        defined = {
            name: [f.name for f in dataclasses.fields(cls) if f.name not in LIBRARY_FIELDS]
            for name, cls in vars(aggregate).items()
            if isinstance(cls, type)
            and dataclasses.is_dataclass(cls)
            and name not in ("Event", "Created")
        }
        assert defined == events, aggregate.__name__


def recorded(app: Application[Any], ids: set[Any]) -> list[Any]:
    """The aggregates' events as the relay will read them: from the notification log."""
    events, start = [], 1
    while section := app.notification_log.select(start, app.notification_log.section_size):
        events += [app.mapper.to_domain_event(n) for n in section if n.originator_id in ids]
        start = section[-1].id + 1
    return events


def test_every_recorded_event_carries_its_tenant(app_factory: Callable[..., Any]) -> None:
    now = datetime.now(UTC)
    tenant = f"tenant-{uuid4().hex[:8]}"
    workflows, executions = app_factory(WorkflowsApplication), app_factory(ExecutionsApplication)
    consensus, policies = app_factory(ConsensusApplication), app_factory(PoliciesApplication)
    wid = workflows.register_workflow(
        tenant, name="w", definition={"steps": [{"id": "a", "agent": "x"}]}
    ).aggregate_id
    run = executions.start_execution(tenant, workflow_id=wid, workflow_version=1).aggregate_id
    executions.schedule_step(tenant, run, step_id="a")
    rid = consensus.open_round(
        tenant, participants=["p"], rule="majority", deadline=now + timedelta(minutes=1)
    ).aggregate_id
    consensus.cast_vote(tenant, rid, participant="p", choice="x")
    pid = policies.publish_policy(tenant, name="p", module="package p\n", mode="warn").aggregate_id

    for app in (workflows, executions, consensus, policies):
        events = recorded(app, {wid, run, rid, pid})
        assert events, app.name
        assert all(e.tenant_id == tenant for e in events), app.name
