"""Event → Timestream records: step latency, tokens, cost, failures, violations, metrics.

Each record's time is the event's ``occurred_at`` and its version is fixed, so a redelivered
event writes an identical record, which Timestream accepts as the same point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Event = Mapping[str, Any]
Record = dict[str, Any]


def _record(
    e: Event, name: str, value: float, value_type: str = "DOUBLE", /, **dimensions: Any
) -> Record:
    dims = {"tenant_id": e["tenant_id"], "event_type": e["event_type"], **dimensions}
    return {
        "Dimensions": [
            {"Name": k, "Value": str(v)} for k, v in sorted(dims.items()) if v not in (None, "")
        ],
        "MeasureName": name,
        "MeasureValue": str(int(value)) if value_type == "BIGINT" else repr(float(value)),
        "MeasureValueType": value_type,
        "Time": str(int(e["occurred_at"].timestamp() * 1000)),
        "TimeUnit": "MILLISECONDS",
        "Version": 1,
    }


def step_completed(e: Event) -> list[Record]:
    """Latency, tokens and cost of a finished step."""
    p = e["payload"]
    dims = {"execution_id": e["aggregate_id"], "step_id": p["step_id"], "model": p.get("model")}
    records = [
        _record(e, "step.tokens_in", p.get("tokens_in") or 0, "BIGINT", **dims),
        _record(e, "step.tokens_out", p.get("tokens_out") or 0, "BIGINT", **dims),
        _record(e, "step.cost_usd", p.get("cost_usd") or 0.0, **dims),
    ]
    if p.get("duration_ms") is not None:
        records.append(_record(e, "step.duration_ms", p["duration_ms"], **dims))
    return records


def step_failed(e: Event) -> list[Record]:
    """One failed step attempt."""
    p = e["payload"]
    return [
        _record(
            e,
            "step.failures",
            1,
            "BIGINT",
            execution_id=e["aggregate_id"],
            step_id=p["step_id"],
            error_type=p.get("error_type"),
        )
    ]


def execution_ended(e: Event) -> list[Record]:
    """A finished run: one count, and its duration when known."""
    p = e["payload"]
    status = e["event_type"].removeprefix("Execution").lower()
    records = [
        _record(e, "execution.ended", 1, "BIGINT", execution_id=e["aggregate_id"], status=status)
    ]
    if p.get("duration_ms") is not None:
        records.append(
            _record(
                e,
                "execution.duration_ms",
                p["duration_ms"],
                execution_id=e["aggregate_id"],
                status=status,
            )
        )
    return records


def failure_detected(e: Event) -> list[Record]:
    """One detected failure."""
    p = e["payload"]
    return [
        _record(
            e,
            "failures",
            1,
            "BIGINT",
            execution_id=p.get("execution_id"),
            kind=p.get("kind"),
            agent=p.get("agent"),
            model=p.get("model"),
        )
    ]


def policy_violated(e: Event) -> list[Record]:
    """One policy violation."""
    p = e["payload"]
    return [
        _record(
            e,
            "policy.violations",
            1,
            "BIGINT",
            execution_id=p.get("execution_id"),
            policy_id=p["policy_id"],
            mode=p.get("mode"),
        )
    ]


def metric_recorded(e: Event) -> list[Record]:
    """A metric reported by a worker, as is."""
    p = e["payload"]
    dims = {f"d.{k}": v for k, v in (p.get("dimensions") or {}).items()}
    return [
        _record(
            e, p["name"], p["value"], execution_id=p.get("execution_id"), unit=p.get("unit"), **dims
        )
    ]


MAPPERS: dict[str, Callable[[Event], list[Record]]] = {
    "StepCompleted": step_completed,
    "StepFailed": step_failed,
    "ExecutionCompleted": execution_ended,
    "ExecutionFailed": execution_ended,
    "ExecutionHalted": execution_ended,
    "ExecutionCancelled": execution_ended,
    "FailureDetected": failure_detected,
    "PolicyViolated": policy_violated,
    "MetricRecorded": metric_recorded,
}
