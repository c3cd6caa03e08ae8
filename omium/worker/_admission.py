"""Tenant concurrency limits: which runs and steps may go now, and which wait in line.

The orchestrator's second stage (see :mod:`omium.worker._orchestrator`). Its first stage, keyed
by execution, forwards what changes a tenant's counts to the internal topic
``<prefix>.streams.orchestrator.admission`` keyed by ``tenant:<tenant>``; there one state per
tenant (table ``admission``) holds:

- ``limits``: the tenant's limits (``ConcurrencyLimitsSet``; ``None`` is unlimited), overall and
  per workflow, for running executions and for concurrent steps;
- ``running``: the tenant's admitted, unfinished runs, and ``queue``: runs waiting, in order;
- ``active``: steps holding a slot (dispatched or started, not yet completed or failed), and
  ``waiting``: step dispatches waiting, in order.

Every message is handled by a pure function of the state and the message that returns what to
send: an ``admit`` record for a run (back to the run's partition, where its first steps are then
scheduled) or a work item (straight to the workers). A limit raised, a run ended or a step
finished admits whatever fits from the head of the lines at once; a lowered limit only stops
admitting (nothing running is stopped). Runs and steps over a workflow's own limit wait without
holding up the others of the tenant. Everything is state of the stream processor, committed with
its outputs in one Kafka transaction and restored from its changelog, so a restart or a moved
partition goes on with the same counts and lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ADMISSION = "admission"
"""State table (tenant key -> admission state) and internal topic suffix."""

ADMISSION_SUFFIX = "admission"

MAX_RUNS = "max_running_executions"
MAX_STEPS = "max_concurrent_steps"


def tenant_key(tenant: str) -> str:
    """The admission topic's key (and the state's) for a tenant."""
    return f"tenant:{tenant}"


@dataclass(frozen=True)
class AdmitRun:
    """A waiting run may start now (sent to its own partition)."""

    execution: str


@dataclass(frozen=True)
class SendWork:
    """A step may run now: this work item goes to the workers."""

    execution: str
    item: dict[str, Any]


Output = AdmitRun | SendWork


def new_state() -> dict[str, Any]:
    """A tenant's admission state: unlimited, nothing running or waiting."""
    return {"limits": {}, "running": {}, "queue": [], "active": {}, "waiting": []}


def handle(state: dict[str, Any], message: Mapping[str, Any]) -> list[Output]:
    """Apply one message to the tenant's state; what to send as a result."""
    kind = message["kind"]
    execution = str(message.get("execution"))
    if kind == "limits":
        state["limits"] = dict(message["limits"])
    elif kind == "run_started":
        if execution not in state["running"] and all(
            entry["execution"] != execution for entry in state["queue"]
        ):
            state["queue"].append({"execution": execution, "workflow": message["workflow"]})
    elif kind == "run_ended":
        state["running"].pop(execution, None)
        state["queue"] = [e for e in state["queue"] if e["execution"] != execution]
        prefix = f"{execution}/"
        state["active"] = {k: v for k, v in state["active"].items() if not k.startswith(prefix)}
        state["waiting"] = [e for e in state["waiting"] if e["execution"] != execution]
    elif kind == "step_dispatch":
        key = f"{execution}/{message['step']}"
        if key in state["active"]:
            # It holds a slot already (dispatched again: a rollback, a fork); no second one.
            return [SendWork(execution, _work(state, message["item"], message["workflow"]))]
        state["waiting"].append(
            {
                "execution": execution,
                "workflow": message["workflow"],
                "step": message["step"],
                "item": dict(message["item"]),
            }
        )
    elif kind == "step_started":
        # A step the worker went on to itself (pipelined) takes a slot too.
        state["active"].setdefault(f"{execution}/{message['step']}", message["workflow"])
    elif kind == "step_ended":
        state["active"].pop(f"{execution}/{message['step']}", None)
    return _fill(state)


def counts(state: Mapping[str, Any]) -> dict[str, int]:
    """How many runs and steps run and wait (for stats and tests)."""
    return {
        "running": len(state["running"]),
        "queued": len(state["queue"]),
        "active_steps": len(state["active"]),
        "waiting_steps": len(state["waiting"]),
    }


def _fill(state: dict[str, Any]) -> list[Output]:
    """Admit from the head of both lines whatever the limits let through, in order."""
    out: list[Output] = []
    queue: list[dict[str, Any]] = []
    for entry in state["queue"]:
        if _fits(state, "running", MAX_RUNS, entry["workflow"]):
            state["running"][entry["execution"]] = entry["workflow"]
            out.append(AdmitRun(entry["execution"]))
        else:
            queue.append(entry)
    state["queue"] = queue
    waiting: list[dict[str, Any]] = []
    for entry in state["waiting"]:
        key = f"{entry['execution']}/{entry['step']}"
        if key in state["active"]:
            out.append(SendWork(entry["execution"], _work(state, entry["item"], entry["workflow"])))
        elif _fits(state, "active", MAX_STEPS, entry["workflow"]):
            state["active"][key] = entry["workflow"]
            out.append(SendWork(entry["execution"], _work(state, entry["item"], entry["workflow"])))
        else:
            waiting.append(entry)
    state["waiting"] = waiting
    return out


def _fits(state: Mapping[str, Any], table: str, limit: str, workflow: str) -> bool:
    taken: Mapping[str, str] = state[table]
    limits = state["limits"]
    overall = limits.get(limit)
    if overall is not None and len(taken) >= overall:
        return False
    own = (limits.get("workflows") or {}).get(workflow, {}).get(limit)
    return own is None or sum(1 for w in taken.values() if w == workflow) < own


def _work(state: Mapping[str, Any], item: Mapping[str, Any], workflow: str) -> dict[str, Any]:
    """The work item as sent: the worker may go on to the next step itself only when no step
    limit applies (a step it goes on to would not wait in line)."""
    limits = state["limits"]
    own = (limits.get("workflows") or {}).get(workflow, {})
    free = limits.get(MAX_STEPS) is None and own.get(MAX_STEPS) is None
    return {**item, "pipeline": free}


def limits_of(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The limits of a ``ConcurrencyLimitsSet`` payload as the state keeps them."""
    return {
        MAX_RUNS: payload.get(MAX_RUNS),
        MAX_STEPS: payload.get(MAX_STEPS),
        "workflows": {
            str(entry["workflow_id"]): {
                MAX_RUNS: entry.get(MAX_RUNS),
                MAX_STEPS: entry.get(MAX_STEPS),
            }
            for entry in payload.get("workflows") or []
        },
    }
