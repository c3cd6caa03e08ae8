"""Realistic sample events of every type, for tests of anything that handles Omium events.

``sample_event("StepCompleted")`` returns a valid, hashed event of the latest schema version with
every payload field present, so ``serde.decode(serde.encode(event)) == event``. Older versions
(``schema_version=1``) hold the same values, cut down to that version's fields. Event types
without a hand-written sample get a payload generated from their schema by :func:`example_datum`.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from omium.kernel.events import GENESIS_HASH, new_event
from omium.kernel.serde import SchemaCatalog, default_catalog

SAMPLE_TENANT = "tenant-sample"
"""Tenant id of sample events unless told otherwise."""

_AT = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
_NO_DEFAULT = object()


def _id(name: str) -> uuid.UUID:
    """A fixed UUID per name, so samples are stable across runs."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"https://omium.io/samples/{name}")


def sample_payload(
    event_type: str,
    *,
    schema_version: int | None = None,
    catalog: SchemaCatalog | None = None,
) -> dict[str, Any]:
    """A payload of an event type with every field of the schema version present.

    Args:
        event_type: Name of the event type.
        schema_version: Version whose fields to fill; the latest by default.
        catalog: Schemas to follow; Omium's own by default.

    Returns:
        A fresh dict: hand-written values where there are some, then schema defaults, then
        generated values.
    """
    catalog = catalog or default_catalog()
    schema = catalog.schema(event_type, schema_version)
    record = next(f["type"] for f in schema["fields"] if f["name"] == "payload")
    written = _PAYLOADS.get(event_type, dict)()
    named = schema.get("__named_schemas", {})
    payload = {}
    for field in record["fields"]:
        name = field["name"]
        if name in written:
            payload[name] = written[name]
        elif (default := field.get("default", _NO_DEFAULT)) is not _NO_DEFAULT:
            payload[name] = copy.deepcopy(default)
        else:
            payload[name] = example_datum(field["type"], named)
    return payload


def sample_event(
    event_type: str,
    *,
    schema_version: int | None = None,
    catalog: SchemaCatalog | None = None,
    tenant_id: str = SAMPLE_TENANT,
    aggregate_id: str | uuid.UUID | None = None,
    aggregate_version: int = 1,
    prev_hash: str = GENESIS_HASH,
    payload: Mapping[str, Any] | None = None,
    causation_id: str | None = None,
    correlation_id: str | None = None,
    occurred_at: datetime | None = None,
    event_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """A valid, hashed sample event, built with :func:`omium.kernel.events.new_event`.

    Args:
        event_type: Name of the event type.
        schema_version: Version to write; the latest by default.
        catalog: Schemas to follow; Omium's own by default.
        tenant_id: Tenant of the event.
        aggregate_id: Aggregate of the event; a new random UUID (as a string) by default.
        aggregate_version: Position in the aggregate's history; 1 (the first event) by default.
        prev_hash: Hash of the previous event; empty (the first event) by default.
        payload: Payload fields to set on top of the sample payload.
        causation_id: Causing command or event, if any.
        correlation_id: Correlation id, if any.
        occurred_at: When it happened; now by default.
        event_id: Event id; a new random UUID by default, as for a real event.

    Returns:
        The event, with every envelope and payload field present.
    """
    catalog = catalog or default_catalog()
    body = sample_payload(event_type, schema_version=schema_version, catalog=catalog)
    return new_event(
        event_type,
        tenant_id=tenant_id,
        aggregate_id=aggregate_id or str(uuid.uuid4()),
        aggregate_version=aggregate_version,
        payload={**body, **(payload or {})},
        prev_hash=prev_hash,
        causation_id=causation_id,
        correlation_id=correlation_id,
        occurred_at=occurred_at,
        event_id=event_id,
        schema_version=schema_version,
        catalog=catalog,
    )


def sample_chain(
    event_types: Sequence[str],
    *,
    aggregate_id: str | uuid.UUID | None = None,
    tenant_id: str = SAMPLE_TENANT,
    catalog: SchemaCatalog | None = None,
) -> list[dict[str, Any]]:
    """One aggregate's history: an event of each type in order, versions 1..n, hash-chained.

    Args:
        event_types: Event type of each event, in history order.
        aggregate_id: The aggregate; a new random UUID (as a string) by default.
        tenant_id: Tenant of the events.
        catalog: Schemas to follow; Omium's own by default.

    Returns:
        The events; ``verify_chain`` accepts them.
    """
    aggregate = str(aggregate_id or uuid.uuid4())
    events: list[dict[str, Any]] = []
    for version, event_type in enumerate(event_types, start=1):
        events.append(
            sample_event(
                event_type,
                catalog=catalog,
                tenant_id=tenant_id,
                aggregate_id=aggregate,
                aggregate_version=version,
                prev_hash=events[-1]["hash"] if events else GENESIS_HASH,
                occurred_at=_AT + timedelta(seconds=version),
            )
        )
    return events


def example_datum(schema: Any, named: Mapping[str, Any] | None = None) -> Any:
    """A valid value for any parsed Avro schema; optional values are filled, not null.

    Args:
        schema: A parsed (fastavro) schema or part of one.
        named: Named types the schema refers to by name (a parsed schema's
            ``__named_schemas``).

    Returns:
        A value that encodes under ``schema`` and decodes back equal.
    """
    named = named or {}
    if isinstance(schema, list):
        branches = [branch for branch in schema if branch != "null"]
        return example_datum(branches[0], named) if branches else None
    if isinstance(schema, str):
        if schema in named:
            return example_datum(named[schema], named)
        return _PRIMITIVES[schema]()
    kind, logical = schema["type"], schema.get("logicalType")
    if logical == "uuid":
        return _id("example")
    if logical in ("timestamp-micros", "timestamp-millis"):
        return datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    if kind == "record":
        return {f["name"]: example_datum(f["type"], named) for f in schema["fields"]}
    if kind == "enum":
        return schema["symbols"][0]
    if kind == "array":
        return [example_datum(schema["items"], named)]
    if kind == "map":
        return {"key": example_datum(schema["values"], named)}
    if kind == "fixed":
        return bytes(schema["size"])
    return example_datum(kind, named)


_PRIMITIVES: dict[str, Callable[[], Any]] = {
    "null": lambda: None,
    "boolean": lambda: True,
    "int": lambda: 7,
    "long": lambda: 42,
    "float": lambda: 1.5,
    "double": lambda: 2.25,
    "bytes": lambda: b"\x00\x01\xfe",
    "string": lambda: "example",
}


# --------------------------------------------------------------------------------------- payloads
# One function per event type, so every call returns fresh mutable values.

_SPAN = {
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "span_id": "00f067aa0ba902b7",
    "parent_span_id": "a3ce929d0e0e4736",
    "execution_id": _id("execution"),
    "step_id": "draft",
    "name": "llm.chat",
    "kind": "llm_call",
    "start_time": _AT,
    "end_time": _AT + timedelta(milliseconds=1250),
    "status": "ok",
    "status_message": None,
    "agent": "writer",
    "model": "gpt-4o-mini",
    "tokens_in": 812,
    "tokens_out": 240,
    "cost_usd": 0.00027,
    "cache_hit": True,
}

_PAYLOADS: dict[str, Callable[[], dict[str, Any]]] = {
    # workflows
    "WorkflowRegistered": lambda: {
        "name": "research-report",
        "version": 1,
        "definition_json": '{"steps": [{"agent": "agents.researcher:run", "id": "research"}]}',
        "definition_sha256": "5d1e3c9a7b2f4e6d8c0a1b3e5f7d9c2b4a6e8f0d1c3b5a7e9f2d4c6b8a0e1f3d",
        "step_ids": ["research"],
        "description": "Researcher, writer and reviewer agents produce a cited report.",
        "registered_by": "alice@example.com",
        "tags": ["reports", "research"],
    },
    "WorkflowVersionPublished": lambda: {
        "version": 3,
        "definition_json": '{"steps": [{"id": "research"}, {"id": "draft"}, {"id": "review"}]}',
        "definition_sha256": "9f2c1f5e0b6a4d8c7e3b2a1908f7e6d5c4b3a29181706f5e4d3c2b1a09f8e7d6",
        "source_format": "yaml",
        "step_ids": ["research", "draft", "review"],
        "published_by": "alice@example.com",
        "changelog": "Reviewer checks citations.",
    },
    # executions
    "ExecutionStarted": lambda: {
        "workflow_id": _id("workflow"),
        "workflow_version": 3,
        "input_json": '{"topic": "battery recycling"}',
        "trigger": "api",
        "parent_execution_id": None,
        "forked_from_checkpoint_id": None,
        "started_by": "alice@example.com",
        "max_cost_usd": 2.5,
        "max_tokens": 200_000,
        "labels": {"team": "research", "env": "staging"},
    },
    "StepScheduled": lambda: {
        "step_id": "draft",
        "attempt": 1,
        "agent": "agents.writer:run",
        "input_json": '{"notes": ["lithium", "cobalt"]}',
        "depends_on": ["research"],
        "branch": None,
        "timeout_ms": 120_000,
    },
    "StepStarted": lambda: {
        "step_id": "draft",
        "attempt": 1,
        "worker_id": "worker-7f3a",
        "agent": "agents.writer:run",
    },
    "StepCompleted": lambda: {
        "step_id": "draft",
        "attempt": 1,
        "output_json": '{"draft": "Battery recycling recovers..."}',
        "duration_ms": 8_412,
        "tokens_in": 3_120,
        "tokens_out": 960,
        "cost_usd": 0.0123,
        "model": "gpt-4o-mini",
    },
    "StepFailed": lambda: {
        "step_id": "review",
        "attempt": 2,
        "error_type": "PostconditionFailed",
        "error_message": "review.citations must not be empty",
        "retryable": True,
        "duration_ms": 3_004,
        "failure_id": _id("failure"),
        "stack_trace": None,
    },
    "CheckpointCreated": lambda: {
        "checkpoint_id": "draft-after-1",
        "step_id": "draft",
        "attempt": 1,
        "position": "after",
        "checksum_sha256": "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b",
        "size_bytes": 17,
        "storage": "inline",
        "inline_state": b'{"draft": "v1"}\n\x00',
        "object_key": None,
        "parent_checkpoint_id": "draft-before-1",
    },
    "CheckpointsPruned": lambda: {
        "checkpoints": [
            {
                "checkpoint_id": "draft-after-1",
                "step_id": "draft",
                "checksum_sha256": (
                    "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b"
                ),
                "size_bytes": 17,
                "storage": "inline",
                "object_key": None,
            }
        ],
        "keep_last": 1,
        "max_age_s": 604800.0,
        "pruned_at": _AT,
    },
    "ExecutionRolledBack": lambda: {
        "checkpoint_id": "draft-after-1",
        "resume_step_id": "draft",
        "position": "after",
        "reason": "review failed twice with the same signature",
        "discarded_step_ids": ["review"],
        "recovery_plan_id": _id("plan"),
        "requested_by": None,
    },
    "HumanApprovalRequested": lambda: {
        "approval_id": _id("approval"),
        "step_id": "publish",
        "prompt": "Publish the report to the customer portal?",
        "context_json": '{"report_url": "s3://reports/42.pdf"}',
        "approvers": ["role:operator", "bob@example.com"],
        "deadline": _AT + timedelta(hours=4),
        "default_action": "reject",  # v1 has no "escalate"; the sample fills every version
        "branch": "publish",
        "approver_role": "operator",
        "escalation": {
            "approvers": ["carol@example.com"],
            "approver_role": "admin",
            "timeout_ms": 3_600_000,
            "default_action": "reject",
        },
    },
    "HumanApprovalEscalated": lambda: {
        "approval_id": _id("approval"),
        "step_id": "publish",
        "approvers": ["carol@example.com"],
        "approver_role": "admin",
        "previous_deadline": _AT + timedelta(hours=4),
        "escalated_at": _AT + timedelta(hours=4, seconds=1),
        "deadline": _AT + timedelta(hours=5, seconds=1),
        "default_action": "reject",
    },
    "HumanApprovalGranted": lambda: {
        "approval_id": _id("approval"),
        "step_id": "publish",
        "decided_by": "bob@example.com",
        "by_default": False,
        "comment": "Looks good.",
    },
    "HumanApprovalRejected": lambda: {
        "approval_id": _id("approval"),
        "step_id": "publish",
        "decided_by": "system",
        "by_default": True,
        "reason": "deadline passed",
    },
    "ExecutionCompleted": lambda: {
        "output_json": '{"report": "s3://reports/42.pdf"}',
        "duration_ms": 61_230,
        "steps_completed": 4,
        "total_tokens": 18_450,
        "total_cost_usd": 0.0871,
    },
    "ExecutionFailed": lambda: {
        "error_type": "RetriesExhausted",
        "error_message": "step review failed 3 times",
        "failed_step_id": "review",
        "failure_id": _id("failure"),
        "duration_ms": 95_000,
    },
    "ExecutionHalted": lambda: {
        "reason": "cost budget of 2.50 USD exceeded",
        "halted_by": "budget",
        "policy_id": "budget.max_cost",
        "step_id": "draft",
        "resumable": True,
    },
    "ExecutionCancelled": lambda: {
        "cancelled_by": "alice@example.com",
        "reason": "wrong topic",
    },
    # failures
    "FailureDetected": lambda: {
        "failure_id": _id("failure"),
        "execution_id": _id("execution"),
        "step_id": "review",
        "attempt": 2,
        "kind": "postcondition_failed",
        "message": "review.citations must not be empty",
        "signature": "postcondition:review.citations:empty",
        "agent": "agents.reviewer:run",
        "model": "gpt-4o-mini",
        "detected_by": "worker",
        "details": {"postcondition": "len(output.citations) > 0"},
    },
    "RecoveryPlanned": lambda: {
        "plan_id": _id("plan"),
        "failure_id": _id("failure"),
        "execution_id": _id("execution"),
        "step_id": "review",
        "plan": "rollback",
        "reason": "same failure twice; roll back to the draft checkpoint",
        "attempt": 3,
        "signature": "postcondition:review.citations:empty",
        "similar_failure_count": 2,
        "backoff_ms": 2_000,
        "target_checkpoint_id": _id("checkpoint"),
        "fallback_agent": None,
        "fallback_model": "gpt-4o",
    },
    # consensus
    "ConsensusRoundOpened": lambda: {
        "execution_id": _id("execution"),
        "step_id": "choose-title",
        "question": "Which title should the report use?",
        "options": ["A", "B"],
        "participants": ["writer", "reviewer", "editor"],
        "weights": {"writer": 1.0, "reviewer": 1.0, "editor": 2.0},
        "rule": "weighted",
        "threshold": 0.5,
        "k": None,
        "deadline": _AT + timedelta(minutes=5),
    },
    "VoteCast": lambda: {
        "voter": "editor",
        "decision": "B",
        "weight": 2.0,
        "confidence": 0.8,
        "rationale": "B is shorter and names the finding.",
    },
    "VoteRejected": lambda: {"voter": "editor", "decision": "A", "reason": "duplicate"},
    "ConsensusReached": lambda: {
        "decision": "B",
        "rule": "weighted",
        "tally": {"A": 1.0, "B": 3.0},
        "agreed": ["reviewer", "editor"],
        "dissented": ["writer"],
        "abstained": [],
    },
    "ConsensusFailed": lambda: {
        "reason": "timeout",
        "rule": "unanimous",
        "tally": {"A": 1.0},
        "votes_received": 1,
        "participant_count": 3,
    },
    # policies
    "PolicyPublished": lambda: {
        "policy_id": "budget.max_cost",
        "version": 2,
        "rego_package": "omium.budget",
        "rego_module": (
            "package omium.budget\n\n"
            "deny contains msg if {\n"
            "  input.execution.cost_usd > input.execution.max_cost_usd\n"
            '  msg := "cost budget exceeded"\n'
            "}\n"
        ),
        "mode": "deny",
        "targets": ["llm_call", "step_output"],
        "description": "Halt a run that spends more than its budget.",
        "published_by": "carol@example.com",
    },
    "PolicyViolated": lambda: {
        "policy_id": "budget.max_cost",
        "policy_version": 2,
        "mode": "deny",
        "execution_id": _id("execution"),
        "step_id": "draft",
        "span_id": "00f067aa0ba902b7",
        "messages": ["cost budget exceeded"],
    },
    "PolicyEvaluationError": lambda: {
        "policy_id": "pii.no_emails",
        "policy_version": 1,
        "mode": "deny",
        "execution_id": _id("execution"),
        "step_id": "draft",
        "error": "rego_type_error: undefined ref: input.output.text",
        "fail_closed": True,
    },
    # traces, metrics, audit
    "SpanRecorded": lambda: {**_SPAN, "attributes": {"http.status_code": "200"}},
    "MetricRecorded": lambda: {
        "name": "step.duration",
        "value": 8412.0,
        "unit": "ms",
        "kind": "histogram",
        "execution_id": _id("execution"),
        "dimensions": {"workflow": "research-report", "step": "draft"},
    },
    "CommandRecorded": lambda: {
        "actor": "alice@example.com",
        "actor_kind": "user",
        "roles": ["developer"],
        "command": "executions.start",
        "target": "workflows/research-report",
        "result": "accepted",
        "reason": None,
        "status_code": 202,
        "request_id": "req-01HZX3",
        "idempotency_key": "start-42",
        "source_ip": "203.0.113.7",
    },
}
