"""Event → OpenSearch documents: spans, failures (with their recovery plans) and audit records.

Document ids come from what a document is about (tenant + span, failure or event id), never
from the delivery, so a redelivered or re-emitted event overwrites its own document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from omium.projections.postgres._sql import jsonable

Event = Mapping[str, Any]


@dataclass(frozen=True)
class DocWrite:
    """One bulk action: index (replace) or update-as-upsert (merge) of one document."""

    model: str
    doc_id: str
    source: dict[str, Any]
    merge: bool = False


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def span_recorded(e: Event) -> list[DocWrite]:
    """One span of a trace."""
    p = e["payload"]
    key = f"{e['tenant_id']}:{p['trace_id']}:{p['span_id']}"
    start, end = p["start_time"], p["end_time"]
    doc = {
        "tenant_id": e["tenant_id"],
        "doc_key": key,
        "event_id": str(e["event_id"]),
        "trace_id": p["trace_id"],
        "span_id": p["span_id"],
        "parent_span_id": p.get("parent_span_id"),
        "execution_id": _str(p.get("execution_id")),
        "step_id": p.get("step_id"),
        "name": p["name"],
        "kind": p["kind"],
        "start_time": _iso(start),
        "end_time": _iso(end),
        "duration_ms": (end - start).total_seconds() * 1000,
        "status": p["status"],
        "status_message": p.get("status_message"),
        "attributes": {str(k): str(v) for k, v in (p.get("attributes") or {}).items()},
        "agent": p.get("agent"),
        "model": p.get("model"),
        "tokens_in": p.get("tokens_in") or 0,
        "tokens_out": p.get("tokens_out") or 0,
        "cost_usd": p.get("cost_usd") or 0.0,
        "cache_hit": p.get("cache_hit"),
    }
    return [DocWrite("spans", key, doc)]


def failure_detected(e: Event) -> list[DocWrite]:
    """A failure (merged with its recovery plan, whichever arrives first)."""
    p = e["payload"]
    key = f"{e['tenant_id']}:{p['failure_id']}"
    doc = {
        "tenant_id": e["tenant_id"],
        "doc_key": key,
        "event_id": str(e["event_id"]),
        "failure_id": str(p["failure_id"]),
        "execution_id": _str(p.get("execution_id")),
        "step_id": p.get("step_id"),
        "attempt": p.get("attempt"),
        "kind": p["kind"],
        "message": p["message"],
        "signature": p["signature"],
        "agent": p.get("agent"),
        "model": p.get("model"),
        "detected_by": p.get("detected_by"),
        "details": {str(k): str(v) for k, v in (p.get("details") or {}).items()},
        "detected_at": _iso(e["occurred_at"]),
    }
    return [DocWrite("failures", key, doc, merge=True)]


def recovery_planned(e: Event) -> list[DocWrite]:
    """The plan chosen for a failure, merged into the failure's document."""
    p = e["payload"]
    key = f"{e['tenant_id']}:{p['failure_id']}"
    doc = {
        "tenant_id": e["tenant_id"],
        "doc_key": key,
        "failure_id": str(p["failure_id"]),
        "execution_id": _str(p.get("execution_id")),
        "plan_id": str(p["plan_id"]),
        "plan": p["plan"],
        "plan_reason": p.get("reason"),
        "planned_at": _iso(e["occurred_at"]),
        "similar_failure_count": p.get("similar_failure_count"),
    }
    return [DocWrite("failures", key, doc, merge=True)]


def command_recorded(e: Event) -> list[DocWrite]:
    """One audit record."""
    p = e["payload"]
    key = f"{e['tenant_id']}:{e['event_id']}"
    doc = {
        "tenant_id": e["tenant_id"],
        "doc_key": key,
        "event_id": str(e["event_id"]),
        "occurred_at": _iso(e["occurred_at"]),
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
    }
    return [DocWrite("audit", key, jsonable(doc))]


MAPPERS: dict[str, Callable[[Event], list[DocWrite]]] = {
    "SpanRecorded": span_recorded,
    "FailureDetected": failure_detected,
    "RecoveryPlanned": recovery_planned,
    "CommandRecorded": command_recorded,
}
