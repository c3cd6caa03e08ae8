"""Event → Redis commands of the live read model: run state, consensus tallies, event streams.

Each function returns plain command lists (``["HSET", key, field, value, ...]``); the batch
script runs them only for events not seen before. ``HSETIF key field expected value`` is the
script's own conditional set.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from omium.projections.postgres._sql import jsonable
from omium.projections.redis._keys import RedisKeys

Event = Mapping[str, Any]
Command = list[str]

TERMINAL = {
    "ExecutionCompleted": "completed",
    "ExecutionFailed": "failed",
    "ExecutionHalted": "halted",
    "ExecutionCancelled": "cancelled",
}
# How long a finished run's or round's live state stays (the PostgreSQL read model keeps it).
ENDED_TTL_S = 24 * 3600
STREAM_TTL_S = 24 * 3600
EXECUTION_STREAM_LEN = 2000
TENANT_STREAM_LEN = 10_000


def execution_of(e: Event) -> str | None:
    """The run an event is about, if it names one."""
    if e["event_type"] in _EXECUTION_TYPES:
        return str(e["aggregate_id"])
    found = e["payload"].get("execution_id")
    return None if found is None else str(found)


def stream_fields(e: Event, execution_id: str | None) -> list[str]:
    """Fields of a stream entry: envelope ids plus the payload as JSON."""
    return [
        "event_id",
        str(e["event_id"]),
        "event_type",
        e["event_type"],
        "aggregate_id",
        str(e["aggregate_id"]),
        "aggregate_version",
        str(e["aggregate_version"]),
        "execution_id",
        execution_id or "",
        "occurred_at",
        e["occurred_at"].isoformat(),
        "payload",
        json.dumps(jsonable(e["payload"]), separators=(",", ":")),
    ]


def commands_for(e: Event, keys: RedisKeys) -> list[Command]:
    """Every command of one event: the streams, then its state changes."""
    tenant, execution = e["tenant_id"], execution_of(e)
    fields = stream_fields(e, execution)
    commands = [
        ["XADD", keys.tenant_events(tenant), "MAXLEN", "~", str(TENANT_STREAM_LEN), "*", *fields]
    ]
    if execution is not None:
        stream = keys.execution_events(tenant, execution)
        commands += [
            ["XADD", stream, "MAXLEN", "~", str(EXECUTION_STREAM_LEN), "*", *fields],
            ["EXPIRE", stream, str(STREAM_TTL_S)],
        ]
    state = _STATE.get(e["event_type"])
    if state is not None:
        commands += state(e, keys)
    return commands


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def _run(e: Event, keys: RedisKeys, *pairs: Any) -> Command:
    key = keys.execution(e["tenant_id"], str(e["aggregate_id"]))
    return [
        "HSET",
        key,
        "last_event_type",
        e["event_type"],
        "last_event_id",
        str(e["event_id"]),
        "last_event_at",
        e["occurred_at"].isoformat(),
        "version",
        str(e["aggregate_version"]),
        *(_s(v) for v in pairs),
    ]


def _started(e: Event, keys: RedisKeys) -> list[Command]:
    p = e["payload"]
    execution = str(e["aggregate_id"])
    return [
        _run(
            e,
            keys,
            "status",
            "pending",
            "workflow_id",
            p.get("workflow_id"),
            "started_at",
            e["occurred_at"].isoformat(),
            "steps_completed",
            0,
            "tokens",
            0,
            "cost_usd",
            0,
        ),
        ["SADD", keys.running(e["tenant_id"]), execution],
    ]


def _step(e: Event, keys: RedisKeys) -> list[Command]:
    p = e["payload"]
    key = keys.execution(e["tenant_id"], str(e["aggregate_id"]))
    commands = [
        _run(
            e,
            keys,
            "current_step_id",
            p["step_id"],
            "current_step_status",
            _STEP_STATUS[e["event_type"]],
        )
    ]
    if e["event_type"] == "StepStarted":
        commands.append(["HSETIF", key, "status", "pending", "running"])
    if e["event_type"] == "StepCompleted":
        tokens = (p.get("tokens_in") or 0) + (p.get("tokens_out") or 0)
        commands += [
            ["HINCRBY", key, "steps_completed", "1"],
            ["HINCRBY", key, "tokens", str(tokens)],
            ["HINCRBYFLOAT", key, "cost_usd", repr(float(p.get("cost_usd") or 0.0))],
        ]
    return commands


def _touch(e: Event, keys: RedisKeys) -> list[Command]:
    return [_run(e, keys)]


def _approval(e: Event, keys: RedisKeys) -> list[Command]:
    key = keys.execution(e["tenant_id"], str(e["aggregate_id"]))
    if e["event_type"] in ("HumanApprovalRequested", "HumanApprovalEscalated"):
        return [_run(e, keys, "status", "waiting_for_approval")]
    return [_run(e, keys), ["HSETIF", key, "status", "waiting_for_approval", "running"]]


def _ended(e: Event, keys: RedisKeys) -> list[Command]:
    execution = str(e["aggregate_id"])
    key = keys.execution(e["tenant_id"], execution)
    return [
        _run(
            e, keys, "status", TERMINAL[e["event_type"]], "ended_at", e["occurred_at"].isoformat()
        ),
        ["SREM", keys.running(e["tenant_id"]), execution],
        ["EXPIRE", key, str(ENDED_TTL_S)],
    ]


def _round_key(e: Event, keys: RedisKeys) -> str:
    return keys.round(e["tenant_id"], str(e["aggregate_id"]))


def _round_opened(e: Event, keys: RedisKeys) -> list[Command]:
    p = e["payload"]
    return [
        [
            "HSET",
            _round_key(e, keys),
            "status",
            "open",
            "rule",
            _s(p.get("rule")),
            "question",
            _s(p.get("question")),
            "execution_id",
            _s(p.get("execution_id")),
            "participants",
            str(len(p.get("participants") or [])),
            "deadline",
            p["deadline"].isoformat() if p.get("deadline") else "",
            "votes",
            "0",
            "rejected",
            "0",
        ]
    ]


def _vote(e: Event, keys: RedisKeys) -> list[Command]:
    p, key = e["payload"], _round_key(e, keys)
    if e["event_type"] == "VoteRejected":
        return [["HINCRBY", key, "rejected", "1"]]
    weight = repr(float(p.get("weight") or 1.0))
    return [
        ["HINCRBY", key, "votes", "1"],
        ["HINCRBYFLOAT", key, f"tally:{p['decision']}", weight],
        ["HSET", key, f"voter:{p['voter']}", p["decision"]],
    ]


def _round_closed(e: Event, keys: RedisKeys) -> list[Command]:
    p, key = e["payload"], _round_key(e, keys)
    status = "reached" if e["event_type"] == "ConsensusReached" else "failed"
    return [
        [
            "HSET",
            key,
            "status",
            status,
            "decision",
            _s(p.get("decision")),
            "reason",
            _s(p.get("reason")),
        ],
        ["EXPIRE", key, str(ENDED_TTL_S)],
    ]


_STEP_STATUS = {
    "StepScheduled": "scheduled",
    "StepStarted": "running",
    "StepCompleted": "completed",
    "StepFailed": "failed",
}

_STATE: dict[str, Callable[[Event, RedisKeys], list[Command]]] = {
    "ExecutionStarted": _started,
    **{t: _step for t in _STEP_STATUS},
    "CheckpointCreated": _touch,
    "ExecutionRolledBack": _touch,
    "HumanApprovalRequested": _approval,
    "HumanApprovalEscalated": _approval,
    "HumanApprovalGranted": _approval,
    "HumanApprovalRejected": _approval,
    **{t: _ended for t in TERMINAL},
    "ConsensusRoundOpened": _round_opened,
    "VoteCast": _vote,
    "VoteRejected": _vote,
    "ConsensusReached": _round_closed,
    "ConsensusFailed": _round_closed,
}

_EXECUTION_TYPES = frozenset(
    {
        "ExecutionStarted",
        "CheckpointCreated",
        "ExecutionRolledBack",
        "HumanApprovalRequested",
        "HumanApprovalEscalated",
        "HumanApprovalGranted",
        "HumanApprovalRejected",
        *_STEP_STATUS,
        *TERMINAL,
    }
)
