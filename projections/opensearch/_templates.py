"""Index templates of the OpenSearch read models: one alias per read model over versioned indices.

A read model ``spans`` of prefix ``omium`` is the alias ``omium-spans``; its indices are
``omium-spans-<generation>``, all shaped by the template ``omium-spans``. A replay builds a new
generation and moves the alias to it in one request.
"""

from __future__ import annotations

from typing import Any

_KW = {"type": "keyword"}
_TEXT_KW = {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 512}}}
# Span names are dotted ("tool.search"): the simple analyzer splits them into words.
_NAME = {
    "type": "text",
    "analyzer": "simple",
    "fields": {"raw": {"type": "keyword", "ignore_above": 512}},
}
_DATE = {"type": "date", "format": "strict_date_optional_time||epoch_millis"}

MAPPINGS: dict[str, dict[str, Any]] = {
    "spans": {
        "tenant_id": _KW,
        "doc_key": _KW,
        "event_id": _KW,
        "trace_id": _KW,
        "span_id": _KW,
        "parent_span_id": _KW,
        "execution_id": _KW,
        "step_id": _KW,
        "name": _NAME,
        "kind": _KW,
        "start_time": _DATE,
        "end_time": _DATE,
        "duration_ms": {"type": "double"},
        "status": _KW,
        "status_message": {"type": "text"},
        "attributes": {"type": "flat_object"},
        "agent": _KW,
        "model": _KW,
        "tokens_in": {"type": "long"},
        "tokens_out": {"type": "long"},
        "cost_usd": {"type": "double"},
        "cache_hit": {"type": "boolean"},
    },
    "failures": {
        "tenant_id": _KW,
        "doc_key": _KW,
        "event_id": _KW,
        "failure_id": _KW,
        "execution_id": _KW,
        "step_id": _KW,
        "attempt": {"type": "integer"},
        "kind": _KW,
        "message": _TEXT_KW,
        "signature": _KW,
        "agent": _KW,
        "model": _KW,
        "detected_by": _KW,
        "details": {"type": "flat_object"},
        "detected_at": _DATE,
        "plan_id": _KW,
        "plan": _KW,
        "plan_reason": {"type": "text"},
        "planned_at": _DATE,
        "similar_failure_count": {"type": "integer"},
    },
    "audit": {
        "tenant_id": _KW,
        "doc_key": _KW,
        "event_id": _KW,
        "occurred_at": _DATE,
        "actor": _KW,
        "actor_kind": _KW,
        "roles": _KW,
        "command": _KW,
        "target": _KW,
        "result": _KW,
        "reason": _KW,
        "status_code": {"type": "integer"},
        "request_id": _KW,
        "idempotency_key": _KW,
        "source_ip": _KW,
    },
}
"""Field mappings of each read model (``dynamic: strict``: an unknown field is refused)."""

READ_MODELS = tuple(MAPPINGS)


def alias(prefix: str, model: str) -> str:
    """The alias clients read and the live projection writes."""
    return f"{prefix}-{model}"


def template(prefix: str, model: str) -> dict[str, Any]:
    """The composable index template of a read model's indices."""
    return {
        "index_patterns": [f"{alias(prefix, model)}-*"],
        "priority": 100,
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "1s"},
            "mappings": {"dynamic": "strict", "properties": MAPPINGS[model]},
        },
        "_meta": {"owner": "omium projections", "read_model": model},
    }
