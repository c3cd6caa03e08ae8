"""One small function per event type: the statements that project it into PostgreSQL.

Field names follow ``schemas/avro``; when a payload schema changes, only the function of that
event changes. Required fields are indexed (a missing one fails that event into the DLQ, loudly);
optional ones are read with ``get``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from omium.projections.postgres._sql import (
    Op,
    insert_once,
    row_of,
    to_json,
    update_versioned,
    upsert_versioned,
)

Event = Mapping[str, Any]
Mapper = Callable[[Event], list[Op]]

# Payload fields left out of timeline summaries: large, or kept in their own table.
_BULKY = frozenset(
    {
        "inline_state",
        "definition_json",
        "rego_module",
        "input_json",
        "output_json",
        "context_json",
        "stack_trace",
    }
)

_TERMINAL = ("completed", "failed", "halted", "cancelled")


def _env(e: Event) -> dict[str, Any]:
    return {"tenant_id": e["tenant_id"], "version": e["aggregate_version"], "at": e["occurred_at"]}


def timeline(
    e: Event, execution_id: Any, *, step_id: str | None = None, area: str = "executions"
) -> Op:
    """The execution-timeline row of an event (no-op when it names no execution)."""
    p = e["payload"]
    summary = {k: v for k, v in p.items() if k not in _BULKY and v is not None}
    row = {
        "tenant_id": e["tenant_id"],
        "event_id": e["event_id"],
        "execution_id": str(execution_id),
        "event_type": e["event_type"],
        "area": area,
        "aggregate_id": str(e["aggregate_id"]),
        "aggregate_version": e["aggregate_version"],
        "occurred_at": e["occurred_at"],
        "step_id": step_id if step_id is not None else p.get("step_id"),
        "summary": {"payload": summary},
    }
    return insert_once("execution_events", row, key=("tenant_id", "event_id"))


def timeline_via_round(e: Event) -> Op:
    """A timeline row for a consensus event, at the execution its round belongs to."""
    p = e["payload"]
    params = {
        "tenant_id": e["tenant_id"],
        "event_id": e["event_id"],
        "event_type": e["event_type"],
        "aggregate_id": str(e["aggregate_id"]),
        "aggregate_version": e["aggregate_version"],
        "occurred_at": e["occurred_at"],
        "summary": to_json({"payload": p}),
    }
    sql = (
        "INSERT INTO {s}.execution_events (tenant_id, event_id, execution_id, event_type, area, "
        "aggregate_id, aggregate_version, occurred_at, step_id, summary) "
        "SELECT %(tenant_id)s, %(event_id)s, r.execution_id, %(event_type)s, 'consensus', "
        "%(aggregate_id)s, %(aggregate_version)s, %(occurred_at)s, r.step_id, %(summary)s::jsonb "
        "FROM {s}.consensus_rounds r WHERE r.tenant_id = %(tenant_id)s "
        "AND r.round_id = %(aggregate_id)s AND r.execution_id IS NOT NULL "
        "ON CONFLICT (tenant_id, event_id) DO NOTHING"
    )
    touches = (
        row_of("execution_events", {"tenant_id": e["tenant_id"], "event_id": e["event_id"]}),
        row_of("consensus_rounds", {"tenant_id": e["tenant_id"], "round_id": e["aggregate_id"]}),
    )
    return Op(sql, params, touches=touches)


# ----------------------------------------------------------------------------------- workflows


def workflow_registered(e: Event) -> list[Op]:
    """A new workflow, with its first definition version."""
    p, env = e["payload"], _env(e)
    row = {
        "tenant_id": env["tenant_id"],
        "workflow_id": str(e["aggregate_id"]),
        "name": p["name"],
        "description": p.get("description"),
        "registered_by": p.get("registered_by"),
        "tags": list(p.get("tags") or []),
        "latest_version": p.get("version"),
        "registered_at": env["at"],
        "updated_at": env["at"],
        "last_event_version": env["version"],
    }
    ops = [
        upsert_versioned(
            "workflows", row, key=("tenant_id", "workflow_id"), version_column="last_event_version"
        )
    ]
    if p.get("version") is not None and p.get("definition_json") is not None:
        ops.append(_workflow_version(e, published_by=p.get("registered_by")))
    return ops


def _workflow_version(e: Event, *, published_by: str | None) -> Op:
    p = e["payload"]
    row = {
        "tenant_id": e["tenant_id"],
        "workflow_id": str(e["aggregate_id"]),
        "version": p["version"],
        "definition_json": p["definition_json"],
        "definition_sha256": p["definition_sha256"],
        "source_format": p.get("source_format") or "json",
        "step_ids": list(p.get("step_ids") or []),
        "published_by": published_by,
        "changelog": p.get("changelog"),
        "published_at": e["occurred_at"],
        "event_id": e["event_id"],
    }
    return insert_once("workflow_versions", row, key=("tenant_id", "workflow_id", "version"))


def workflow_version_published(e: Event) -> list[Op]:
    """A new definition version of a workflow."""
    p, env = e["payload"], _env(e)
    key = {"tenant_id": env["tenant_id"], "workflow_id": str(e["aggregate_id"])}
    return [
        _workflow_version(e, published_by=p.get("published_by")),
        update_versioned(
            "workflows",
            key,
            version=env["version"],
            values={"latest_version": p["version"], "updated_at": env["at"]},
        ),
    ]


# ---------------------------------------------------------------------------------- executions


def _execution(e: Event, **kwargs: Any) -> Op:
    env = _env(e)
    values = {"updated_at": env["at"], **kwargs.pop("values", {})}
    key = {"tenant_id": env["tenant_id"], "execution_id": str(e["aggregate_id"])}
    return update_versioned("executions", key, version=env["version"], values=values, **kwargs)


def _step(e: Event, status: str, **columns: Any) -> Op:
    p, env = e["payload"], _env(e)
    row = {
        "tenant_id": env["tenant_id"],
        "execution_id": str(e["aggregate_id"]),
        "step_id": p["step_id"],
        "attempt": p.get("attempt") or 1,
        "status": status,
        **columns,
        "last_event_version": env["version"],
    }
    return upsert_versioned(
        "steps",
        row,
        key=("tenant_id", "execution_id", "step_id", "attempt"),
        version_column="last_event_version",
    )


_ADD_AGENT = (
    "CASE WHEN %(agent)s::text IS NULL OR %(agent)s::text = ANY(agents) THEN agents "
    "ELSE array_append(agents, %(agent)s::text) END"
)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def execution_started(e: Event) -> list[Op]:
    """A run was created (it is ``pending`` until its first step starts)."""
    p, env = e["payload"], _env(e)
    row = {
        "tenant_id": env["tenant_id"],
        "execution_id": str(e["aggregate_id"]),
        "workflow_id": p.get("workflow_id"),
        "workflow_version": p.get("workflow_version"),
        "status": "pending",
        "trigger": p.get("trigger"),
        "started_by": p.get("started_by"),
        "parent_execution_id": _optional_str(p.get("parent_execution_id")),
        # v2 names a fork's parent checkpoint in its fork record (checkpoint ids are not UUIDs).
        "forked_from_checkpoint_id": (p.get("fork") or {}).get("checkpoint_id")
        or _optional_str(p.get("forked_from_checkpoint_id")),
        "labels": dict(p.get("labels") or {}),
        "input_json": p.get("input_json"),
        "max_cost_usd": p.get("max_cost_usd"),
        "max_tokens": p.get("max_tokens"),
        "started_at": env["at"],
        "updated_at": env["at"],
        "last_event_version": env["version"],
    }
    return [
        upsert_versioned(
            "executions",
            row,
            key=("tenant_id", "execution_id"),
            version_column="last_event_version",
        ),
        timeline(e, e["aggregate_id"]),
    ]


def step_scheduled(e: Event) -> list[Op]:
    """A step was scheduled."""
    p = e["payload"]
    return [
        _step(
            e,
            "scheduled",
            agent=p.get("agent"),
            branch=p.get("branch"),
            depends_on=list(p.get("depends_on") or []),
            scheduled_at=e["occurred_at"],
        ),
        _execution(e, expressions={"agents": _ADD_AGENT}, params={"agent": p.get("agent")}),
        timeline(e, e["aggregate_id"]),
    ]


def step_started(e: Event) -> list[Op]:
    """A worker started a step; the first one moves the run from pending to running."""
    p = e["payload"]
    status = "CASE WHEN status = 'pending' THEN 'running' ELSE status END"
    return [
        _step(
            e,
            "running",
            agent=p.get("agent"),
            worker_id=p.get("worker_id"),
            started_at=e["occurred_at"],
        ),
        _execution(
            e,
            values={"current_step_id": p["step_id"]},
            expressions={"agents": _ADD_AGENT, "status": status},
            params={"agent": p.get("agent")},
        ),
        timeline(e, e["aggregate_id"]),
    ]


def step_completed(e: Event) -> list[Op]:
    """A step finished; its tokens and cost add up on the run."""
    p = e["payload"]
    tokens_in, tokens_out = p.get("tokens_in") or 0, p.get("tokens_out") or 0
    cost = p.get("cost_usd") or 0.0
    return [
        _step(
            e,
            "completed",
            output_json=p.get("output_json"),
            duration_ms=p.get("duration_ms"),
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=cost,
            model=p.get("model"),
            ended_at=e["occurred_at"],
        ),
        _execution(
            e,
            increments={
                "steps_completed": 1,
                "total_tokens": tokens_in + tokens_out,
                "total_cost_usd": cost,
            },
        ),
        timeline(e, e["aggregate_id"]),
    ]


def step_failed(e: Event) -> list[Op]:
    """A step attempt failed."""
    p = e["payload"]
    return [
        _step(
            e,
            "failed",
            error_type=p.get("error_type"),
            error_message=p.get("error_message"),
            retryable=p.get("retryable"),
            failure_id=p.get("failure_id"),
            duration_ms=p.get("duration_ms"),
            ended_at=e["occurred_at"],
        ),
        _execution(e, increments={"steps_failed": 1}),
        timeline(e, e["aggregate_id"]),
    ]


def checkpoint_created(e: Event) -> list[Op]:
    """A checkpoint's metadata (and its state, when stored inline)."""
    p, env = e["payload"], _env(e)
    row = {
        "tenant_id": env["tenant_id"],
        "checkpoint_id": p["checkpoint_id"],
        "execution_id": str(e["aggregate_id"]),
        "step_id": p["step_id"],
        "attempt": p.get("attempt") or 1,
        "position": p["position"],
        "checksum_sha256": p["checksum_sha256"],
        "size_bytes": p["size_bytes"],
        "storage": p["storage"],
        "inline_state": p.get("inline_state"),
        "object_key": p.get("object_key"),
        "parent_checkpoint_id": p.get("parent_checkpoint_id"),
        "created_at": env["at"],
        "event_id": e["event_id"],
    }
    return [
        insert_once("checkpoints", row, key=("tenant_id", "checkpoint_id")),
        _execution(e),
        timeline(e, e["aggregate_id"]),
    ]


def checkpoints_pruned(e: Event) -> list[Op]:
    """Retention let checkpoints go: each is marked pruned and its inline state dropped."""
    p, env = e["payload"], _env(e)
    prune = Op(
        "UPDATE {s}.checkpoints SET pruned_at = %(at)s, inline_state = NULL "
        "WHERE tenant_id = %(tenant_id)s AND execution_id = %(execution_id)s "
        "AND checkpoint_id = ANY(%(ids)s)",
        {
            "tenant_id": env["tenant_id"],
            "execution_id": str(e["aggregate_id"]),
            "ids": [c["checkpoint_id"] for c in p.get("checkpoints") or []],
            "at": p.get("pruned_at") or env["at"],
        },
        barrier=("checkpoints",),
    )
    return [prune, _execution(e), timeline(e, e["aggregate_id"])]


def execution_rolled_back(e: Event) -> list[Op]:
    """The run went back to a checkpoint; the discarded steps are marked so."""
    p, env = e["payload"], _env(e)
    discard = Op(
        "UPDATE {s}.steps SET status = 'discarded', last_event_version = %(version)s "
        "WHERE tenant_id = %(tenant_id)s AND execution_id = %(execution_id)s "
        "AND step_id = ANY(%(steps)s) AND last_event_version < %(version)s",
        {
            "tenant_id": env["tenant_id"],
            "execution_id": str(e["aggregate_id"]),
            "steps": list(p.get("discarded_step_ids") or []),
            "version": env["version"],
        },
        barrier=("steps",),
    )
    return [
        discard,
        _execution(
            e,
            values={
                "status": "running",
                "status_reason": p.get("reason"),
                "current_step_id": p.get("resume_step_id"),
            },
        ),
        timeline(e, e["aggregate_id"], step_id=p.get("resume_step_id")),
    ]


def approval_requested(e: Event) -> list[Op]:
    """A step waits for a human decision."""
    return [
        _execution(e, values={"status": "waiting_for_approval"}),
        timeline(e, e["aggregate_id"]),
    ]


def approval_decided(e: Event) -> list[Op]:
    """A human (or the deadline's default) decided; the run goes on."""
    status = "CASE WHEN status = 'waiting_for_approval' THEN 'running' ELSE status END"
    return [_execution(e, expressions={"status": status}), timeline(e, e["aggregate_id"])]


def _ended(e: Event, status: str, **values: Any) -> list[Op]:
    return [
        _execution(e, values={"status": status, "ended_at": e["occurred_at"], **values}),
        timeline(e, e["aggregate_id"]),
    ]


def execution_completed(e: Event) -> list[Op]:
    """The run completed; its own totals, when it reports them, replace the sums of its steps."""
    p = e["payload"]
    totals = {
        name: p[name] for name in ("total_tokens", "total_cost_usd") if p.get(name) is not None
    }
    return _ended(
        e, "completed", output_json=p.get("output_json"), duration_ms=p.get("duration_ms"), **totals
    )


def execution_failed(e: Event) -> list[Op]:
    """The run failed."""
    p = e["payload"]
    return _ended(
        e,
        "failed",
        error_type=p.get("error_type"),
        error_message=p.get("error_message"),
        duration_ms=p.get("duration_ms"),
    )


def execution_halted(e: Event) -> list[Op]:
    """A policy, budget or operator halted the run."""
    return _ended(e, "halted", status_reason=e["payload"].get("reason"))


def execution_cancelled(e: Event) -> list[Op]:
    """Someone cancelled the run."""
    return _ended(e, "cancelled", status_reason=e["payload"].get("reason"))
