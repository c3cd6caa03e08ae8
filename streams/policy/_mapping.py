"""Decoded events to the policy input document, and policy outcomes to event payloads.

Only this module knows the field names of the input schemas, so a schema change is one edit.
The input document a Rego module sees (``input``)::

    {"target": "step_output" | "llm_call" | "tool_call", "tenant": ..., "execution_id": ...,
     "workflow": {"id", "version"} | null, "step": ..., "agent": ..., "model": ..., "tool": ...,
     "tokens": {"in", "out", "total"}, "cost_usd": ..., "output": <text>,
     "output_json": <parsed step output> | null, "attributes": {...},
     "run": {"cost_usd", "tokens", "max_cost_usd", "max_tokens"} | null}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from omium.streams.policy._registry import CompiledPolicy

SPAN_TARGETS = {"llm_call": "llm_call", "tool_call": "tool_call"}


def policy_of(event: Mapping[str, Any]) -> CompiledPolicy:
    """Compile the policy version a ``PolicyPublished`` event carries."""
    payload = event["payload"]
    return CompiledPolicy.compile(
        tenant_id=event["tenant_id"],
        policy_id=payload["policy_id"],
        version=int(payload["version"]),
        mode=str(payload["mode"]),
        targets=list(payload.get("targets") or []),
        package=payload["rego_package"],
        module=payload["rego_module"],
    )


def new_run(event: Mapping[str, Any]) -> dict[str, Any]:
    """The run facts kept per execution, from ``ExecutionStarted``."""
    payload = event["payload"]
    return {
        "workflow": {"id": str(payload["workflow_id"]), "version": payload["workflow_version"]},
        "max_cost_usd": payload.get("max_cost_usd"),
        "max_tokens": payload.get("max_tokens"),
        "cost_usd": 0.0,
        "tokens": 0,
    }


def add_usage(run: dict[str, Any], document: Mapping[str, Any]) -> None:
    """Add a step's cost and tokens to the run's totals."""
    run["cost_usd"] = run["cost_usd"] + document["cost_usd"]
    run["tokens"] = run["tokens"] + document["tokens"]["total"]


def run_view(run: Mapping[str, Any]) -> dict[str, Any]:
    """The ``input.run`` part of a document: the run's totals so far and its budgets."""
    return {k: run[k] for k in ("cost_usd", "tokens", "max_cost_usd", "max_tokens")}


def step_document(event: Mapping[str, Any], run: Mapping[str, Any] | None) -> dict[str, Any]:
    """The input document of a ``StepCompleted`` event (target ``step_output``)."""
    payload = event["payload"]
    text = payload.get("output_json") or ""
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    return _document(
        event,
        target="step_output",
        execution_id=str(event["aggregate_id"]),
        step=payload["step_id"],
        model=payload.get("model"),
        tokens_in=payload["tokens_in"],
        tokens_out=payload["tokens_out"],
        cost_usd=payload.get("cost_usd", 0.0),
        output=text,
        extra={"output_json": parsed, "attempt": payload.get("attempt")},
        run=run,
    )


def span_document(event: Mapping[str, Any], run: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The input document of an LLM or tool call span (``None`` for other spans)."""
    payload = event["payload"]
    target = SPAN_TARGETS.get(str(payload["kind"]))
    if target is None or payload.get("execution_id") is None:
        return None
    attributes = dict(payload.get("attributes") or {})
    return _document(
        event,
        target=target,
        execution_id=str(payload["execution_id"]),
        step=payload.get("step_id"),
        model=payload.get("model"),
        tokens_in=payload["tokens_in"],
        tokens_out=payload["tokens_out"],
        cost_usd=payload.get("cost_usd", 0.0),
        output=attributes.get("output", ""),
        extra={
            "agent": payload.get("agent"),
            "tool": attributes.get("tool") or (payload["name"] if target == "tool_call" else None),
            "span_id": payload["span_id"],
            "attributes": attributes,
            "status": str(payload.get("status")),
        },
        run=run,
    )


def _document(
    event: Mapping[str, Any],
    *,
    target: str,
    execution_id: str,
    step: str | None,
    model: str | None,
    tokens_in: int,
    tokens_out: int,
    cost_usd: float,
    output: str,
    extra: Mapping[str, Any],
    run: Mapping[str, Any] | None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "target": target,
        "tenant": event["tenant_id"],
        "execution_id": execution_id,
        "workflow": None if run is None else run["workflow"],
        "step": step,
        "agent": None,
        "model": model,
        "tool": None,
        "tokens": {"in": tokens_in, "out": tokens_out, "total": tokens_in + tokens_out},
        "cost_usd": cost_usd,
        "output": output,
        "output_json": None,
        "attributes": {},
        "run": None if run is None else run_view(run),
    }
    document.update(extra)
    return document


def violated_payload(
    policy: CompiledPolicy, document: Mapping[str, Any], messages: list[str]
) -> dict[str, Any]:
    """The ``PolicyViolated`` payload."""
    return {
        "policy_id": policy.policy_id,
        "policy_version": policy.version,
        "mode": policy.mode,
        "execution_id": document["execution_id"],
        "step_id": document["step"],
        "span_id": document.get("span_id"),
        "messages": messages,
    }


def error_payload(
    policy: CompiledPolicy, document: Mapping[str, Any], error: str
) -> dict[str, Any]:
    """The ``PolicyEvaluationError`` payload; deny-mode errors fail closed."""
    return {
        "policy_id": policy.policy_id,
        "policy_version": policy.version,
        "mode": policy.mode,
        "execution_id": document["execution_id"],
        "step_id": document["step"],
        "error": error,
        "fail_closed": policy.mode == "deny",
    }
