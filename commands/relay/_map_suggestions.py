"""Recovery suggestion events of a run → Avro (area ``executions``, keyed by the run).

The domain keeps a diagnosis as free-form JSON; its known parts (probable cause, evidence,
similar failures, confidence) become fields, and the whole of it ``diagnosis_json``. Missing
parts are empty or null, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omium.commands.executions import Execution
from omium.commands.relay._mapping import PayloadMapping, area_mappings, json_text


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _fix(fix: Mapping[str, Any]) -> dict[str, Any]:
    changed = fix.get("input")
    return {
        "action": fix["action"],
        "step_id": _text(fix.get("step_id")),
        "checkpoint_id": _text(fix.get("checkpoint_id")),
        "agent": _text(fix.get("agent")),
        "model": _text(fix.get("model")),
        "input_json": json_text(changed) if changed is not None else None,
        "reason": _text(fix.get("reason")),
    }


def _evidence(diagnosis: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = diagnosis.get("evidence")
    return [
        {
            "source": str(item.get("source") or "unknown"),
            "quote": str(item.get("quote") or ""),
            "verified": bool(item.get("verified", False)),
        }
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, Mapping)
    ]


def _similar(diagnosis: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = diagnosis.get("similar_failures")
    return [
        {
            "description": str(item.get("description") or ""),
            "fixed_by": _text(item.get("fixed_by")),
            "success_rate": _number(item.get("success_rate")),
        }
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, Mapping)
    ]


def recovery_suggested(event: Any) -> dict[str, Any]:
    """``RecoverySuggested``: the diagnosis, the proposed fix and what the diagnosis cost."""
    diagnosis: Mapping[str, Any] = event.diagnosis
    usage: Mapping[str, Any] = event.usage or {}
    return {
        "suggestion_id": event.suggestion_id,
        "failure_id": event.failure_id,
        "step_id": event.step_id,
        "probable_cause": str(diagnosis.get("probable_cause") or ""),
        "evidence": _evidence(diagnosis),
        "similar_failures": _similar(diagnosis),
        "fix": _fix(event.fix),
        "confidence": _number(diagnosis.get("confidence")),
        "diagnosis_json": json_text(diagnosis),
        "requested_by": event.requested_by,
        "provider": _text(usage.get("provider")),
        "model": _text(usage.get("model")),
        "tokens_in": int(usage.get("tokens_in") or 0),
        "tokens_out": int(usage.get("tokens_out") or 0),
        "cost_usd": float(usage.get("cost_usd") or 0.0),
    }


def suggestion_approved(event: Any) -> dict[str, Any]:
    """``RecoverySuggestionApproved``: the fix applied and whether the reviewer edited it."""
    return {
        "suggestion_id": event.suggestion_id,
        "step_id": _text(event.fix.get("step_id")),
        "decided_by": event.decided_by,
        "edited": bool(event.edited),
        "fix": _fix(event.fix),
        "comment": event.comment,
    }


def suggestion_rejected(event: Any) -> dict[str, Any]:
    """``RecoverySuggestionRejected``: who rejected it, and why."""
    return {
        "suggestion_id": event.suggestion_id,
        "step_id": None,
        "decided_by": event.decided_by,
        "comment": event.comment,
    }


MAPPINGS = area_mappings(
    Execution,
    {
        "RecoverySuggested": PayloadMapping("RecoverySuggested", 1, recovery_suggested),
        "RecoverySuggestionApproved": PayloadMapping(
            "RecoverySuggestionApproved", 1, suggestion_approved
        ),
        "RecoverySuggestionRejected": PayloadMapping(
            "RecoverySuggestionRejected", 1, suggestion_rejected
        ),
    },
)
"""Stored topic → mapping for every recovery suggestion event of a run."""
