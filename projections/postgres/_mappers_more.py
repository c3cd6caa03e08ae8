"""Mappers for failures, consensus, policies and audit, and the table of every mapper."""

from __future__ import annotations

from omium.projections.postgres import _mappers as m
from omium.projections.postgres._mappers import Event, Mapper, timeline, timeline_via_round
from omium.projections.postgres._sql import Op, insert_once, update_versioned, upsert_versioned

# ------------------------------------------------------------------------------------ failures


def failure_detected(e: Event) -> list[Op]:
    """A failure of a run (one row per failure id)."""
    p = e["payload"]
    row = {
        "tenant_id": e["tenant_id"],
        "failure_id": p["failure_id"],
        "execution_id": p["execution_id"],
        "step_id": p.get("step_id"),
        "attempt": p.get("attempt"),
        "kind": p["kind"],
        "message": p["message"],
        "signature": p["signature"],
        "agent": p.get("agent"),
        "model": p.get("model"),
        "detected_by": p.get("detected_by"),
        "details": dict(p.get("details") or {}),
        "detected_at": e["occurred_at"],
        "event_id": e["event_id"],
    }
    return [
        insert_once("failures", row, key=("tenant_id", "failure_id")),
        timeline(e, p["execution_id"], area="failures"),
    ]


def recovery_planned(e: Event) -> list[Op]:
    """The recovery plan chosen for a failure."""
    p = e["payload"]
    row = {
        "tenant_id": e["tenant_id"],
        "plan_id": p["plan_id"],
        "failure_id": p["failure_id"],
        "execution_id": p["execution_id"],
        "step_id": p.get("step_id"),
        "plan": p["plan"],
        "reason": p["reason"],
        "attempt": p.get("attempt"),
        "signature": p.get("signature"),
        "similar_failure_count": p.get("similar_failure_count"),
        "backoff_ms": p.get("backoff_ms"),
        "target_checkpoint_id": p.get("target_checkpoint_id"),
        "fallback_agent": p.get("fallback_agent"),
        "fallback_model": p.get("fallback_model"),
        "planned_at": e["occurred_at"],
        "event_id": e["event_id"],
    }
    return [
        insert_once("recovery_plans", row, key=("tenant_id", "plan_id")),
        timeline(e, p["execution_id"], area="failures"),
    ]


# ----------------------------------------------------------------------------------- consensus


def _round(
    e: Event, *, values: dict[str, object] | None = None, increments: dict[str, float] | None = None
) -> Op:
    key = {"tenant_id": e["tenant_id"], "round_id": str(e["aggregate_id"])}
    return update_versioned(
        "consensus_rounds",
        key,
        version=e["aggregate_version"],
        values={"updated_at": e["occurred_at"], **(values or {})},
        increments=increments,
    )


def round_opened(e: Event) -> list[Op]:
    """A consensus round opened."""
    p = e["payload"]
    row = {
        "tenant_id": e["tenant_id"],
        "round_id": str(e["aggregate_id"]),
        "execution_id": p.get("execution_id"),
        "step_id": p.get("step_id"),
        "question": p.get("question"),
        "options": list(p.get("options") or []),
        "participants": list(p.get("participants") or []),
        "weights": dict(p.get("weights") or {}),
        "rule": p.get("rule"),
        "threshold": p.get("threshold"),
        "k": p.get("k"),
        "deadline": p.get("deadline"),
        "status": "open",
        "opened_at": e["occurred_at"],
        "updated_at": e["occurred_at"],
        "last_event_version": e["aggregate_version"],
    }
    ops = [
        upsert_versioned(
            "consensus_rounds",
            row,
            key=("tenant_id", "round_id"),
            version_column="last_event_version",
        )
    ]
    if p.get("execution_id") is not None:
        ops.append(timeline(e, p["execution_id"], area="consensus"))
    return ops


def _vote(e: Event, *, accepted: bool) -> Op:
    p = e["payload"]
    row = {
        "tenant_id": e["tenant_id"],
        "event_id": e["event_id"],
        "round_id": str(e["aggregate_id"]),
        "voter": p["voter"],
        "decision": p["decision"],
        "accepted": accepted,
        "weight": p.get("weight"),
        "confidence": p.get("confidence"),
        "rationale": p.get("rationale"),
        "reason": p.get("reason"),
        "cast_at": e["occurred_at"],
    }
    return insert_once("consensus_votes", row, key=("tenant_id", "event_id"))


def vote_cast(e: Event) -> list[Op]:
    """A vote counted in a round."""
    return [_vote(e, accepted=True), _round(e, increments={"votes_cast": 1}), timeline_via_round(e)]


def vote_rejected(e: Event) -> list[Op]:
    """A vote refused (duplicate, not a participant, round closed)."""
    return [
        _vote(e, accepted=False),
        _round(e, increments={"votes_rejected": 1}),
        timeline_via_round(e),
    ]


def consensus_reached(e: Event) -> list[Op]:
    """The round decided."""
    p = e["payload"]
    return [
        _round(
            e,
            values={
                "status": "reached",
                "decision": p["decision"],
                "tally": dict(p.get("tally") or {}),
                "closed_at": e["occurred_at"],
            },
        ),
        timeline_via_round(e),
    ]


def consensus_failed(e: Event) -> list[Op]:
    """The round ended without a decision."""
    p = e["payload"]
    return [
        _round(
            e,
            values={
                "status": "failed",
                "failure_reason": p.get("reason"),
                "tally": dict(p.get("tally") or {}),
                "closed_at": e["occurred_at"],
            },
        ),
        timeline_via_round(e),
    ]


# ------------------------------------------------------------------------------------ policies


def policy_published(e: Event) -> list[Op]:
    """A policy version; ``policies`` holds the latest one."""
    p = e["payload"]
    row = {
        "tenant_id": e["tenant_id"],
        "policy_id": p["policy_id"],
        "rego_package": p["rego_package"],
        "rego_module": p["rego_module"],
        "mode": p["mode"],
        "targets": [str(t) for t in p.get("targets") or []],
        "description": p.get("description"),
        "published_by": p.get("published_by"),
        "published_at": e["occurred_at"],
    }
    return [
        insert_once(
            "policy_versions",
            {**row, "version": p["version"], "event_id": e["event_id"]},
            key=("tenant_id", "policy_id", "version"),
        ),
        upsert_versioned(
            "policies",
            {**row, "latest_version": p["version"]},
            key=("tenant_id", "policy_id"),
            version_column="latest_version",
        ),
    ]


def _violation(e: Event, kind: str) -> Op:
    p = e["payload"]
    params = {
        "tenant_id": e["tenant_id"],
        "event_id": e["event_id"],
        "kind": kind,
        "policy_id": p["policy_id"],
        "policy_version": p.get("policy_version"),
        "mode": p.get("mode"),
        "execution_id": _text(p.get("execution_id")),
        "step_id": p.get("step_id"),
        "span_id": p.get("span_id"),
        "messages": list(p.get("messages") or []),
        "error": p.get("error"),
        "fail_closed": p.get("fail_closed"),
        "occurred_at": e["occurred_at"],
    }
    return insert_once("policy_violations", params, key=("tenant_id", "event_id"))


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def policy_violated(e: Event) -> list[Op]:
    """A policy denied or warned about a step or LLM call."""
    p = e["payload"]
    return [_violation(e, "violated"), timeline(e, p["execution_id"], area="policies")]


def policy_evaluation_error(e: Event) -> list[Op]:
    """A policy could not be evaluated."""
    p = e["payload"]
    ops = [_violation(e, "evaluation_error")]
    if p.get("execution_id") is not None:
        ops.append(timeline(e, p["execution_id"], area="policies"))
    return ops


# --------------------------------------------------------------------------------------- audit


def command_recorded(e: Event) -> list[Op]:
    """One audit-trail entry."""
    p = e["payload"]
    row = {
        "tenant_id": e["tenant_id"],
        "event_id": e["event_id"],
        "occurred_at": e["occurred_at"],
        "actor": p["actor"],
        "actor_kind": p["actor_kind"],
        "roles": list(p.get("roles") or []),
        "command": p["command"],
        "target": p.get("target"),
        "result": p["result"],
        "reason": p.get("reason"),
        "status_code": p.get("status_code"),
        "request_id": p.get("request_id"),
        "idempotency_key": p.get("idempotency_key"),
        "source_ip": p.get("source_ip"),
        "correlation_id": e.get("correlation_id"),
    }
    return [insert_once("audit_log", row, key=("tenant_id", "event_id"))]


def recovery_suggestion(e: Event) -> list[Op]:
    """A run's recovery suggestion was made, approved or rejected: a row of its timeline.

    The fix an approval applies is in the events of the same save (StepScheduled ...).
    """
    key = {"tenant_id": e["tenant_id"], "execution_id": str(e["aggregate_id"])}
    payload = {k: v for k, v in e["payload"].items() if k != "diagnosis_json"}
    return [
        update_versioned(
            "executions",
            key,
            version=e["aggregate_version"],
            values={"updated_at": e["occurred_at"]},
        ),
        timeline({**e, "payload": payload}, e["aggregate_id"]),
    ]


MAPPERS: dict[str, Mapper] = {
    "WorkflowRegistered": m.workflow_registered,
    "WorkflowVersionPublished": m.workflow_version_published,
    "ExecutionStarted": m.execution_started,
    "StepScheduled": m.step_scheduled,
    "StepStarted": m.step_started,
    "StepCompleted": m.step_completed,
    "StepFailed": m.step_failed,
    "CheckpointCreated": m.checkpoint_created,
    "CheckpointsPruned": m.checkpoints_pruned,
    "ExecutionRolledBack": m.execution_rolled_back,
    "HumanApprovalRequested": m.approval_requested,
    "HumanApprovalEscalated": m.approval_requested,  # still waiting, for other deciders
    "HumanApprovalGranted": m.approval_decided,
    "HumanApprovalRejected": m.approval_decided,
    "ExecutionCompleted": m.execution_completed,
    "ExecutionFailed": m.execution_failed,
    "ExecutionHalted": m.execution_halted,
    "ExecutionCancelled": m.execution_cancelled,
    "FailureDetected": failure_detected,
    "RecoveryPlanned": recovery_planned,
    "RecoverySuggested": recovery_suggestion,
    "RecoverySuggestionApproved": recovery_suggestion,
    "RecoverySuggestionRejected": recovery_suggestion,
    "ConsensusRoundOpened": round_opened,
    "VoteCast": vote_cast,
    "VoteRejected": vote_rejected,
    "ConsensusReached": consensus_reached,
    "ConsensusFailed": consensus_failed,
    "PolicyPublished": policy_published,
    "PolicyViolated": policy_violated,
    "PolicyEvaluationError": policy_evaluation_error,
    "CommandRecorded": command_recorded,
}
"""Event type → mapper. Types not listed (spans, metrics) are not part of this read model."""
