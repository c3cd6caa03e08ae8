"""Decoded consensus events to the processor's round state, and decisions to event payloads.

Only this module knows the field names of the consensus schemas, so a schema change is one edit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from omium.commands.consensus import Evaluation, RoundRule


@dataclass(frozen=True)
class Vote:
    """A vote as read from a ``VoteCast`` event."""

    round_id: str
    event_id: str
    voter: str
    decision: str
    cast_at: datetime


def new_round(event: Mapping[str, Any]) -> dict[str, Any]:
    """The state of a round from its ``ConsensusRoundOpened`` event (JSON-compatible)."""
    payload = event["payload"]
    rule = str(payload["rule"])
    weights = payload.get("weights") or None
    deadline: datetime = payload["deadline"]
    state = {
        "tenant_id": event["tenant_id"],
        "rule": rule,
        "participants": list(payload["participants"]),
        # The schema says "empty: every participant weighs 1"; the rules only take weights
        # for the weighted rule.
        "weights": dict(weights) if weights and rule == "weighted" else None,
        "threshold": payload.get("threshold"),
        "k": payload.get("k"),
        "deadline": deadline.astimezone(UTC).isoformat(),
        "execution_id": None
        if payload.get("execution_id") is None
        else str(payload["execution_id"]),
        "correlation_id": event.get("correlation_id"),
        "votes": {},
        "vote_ids": [],
        "rejected_ids": [],
        "status": "open",
        "decided_by": None,
    }
    round_rule(state)  # refuse a round the rules cannot evaluate, before storing it
    return state


def vote_of(event: Mapping[str, Any]) -> Vote:
    """The vote in a ``VoteCast`` event."""
    payload = event["payload"]
    return Vote(
        round_id=str(event["aggregate_id"]),
        event_id=str(event["event_id"]),
        voter=str(payload["voter"]),
        decision=str(payload["decision"]),
        cast_at=event["occurred_at"],
    )


def round_rule(state: Mapping[str, Any]) -> RoundRule:
    """The round's rule, validated by the command side's pure rule logic."""
    return RoundRule.create(
        state["rule"],
        state["participants"],
        weights=state["weights"],
        threshold=state["threshold"],
        k=state["k"],
    )


def deadline_of(state: Mapping[str, Any]) -> datetime:
    """When the round times out."""
    return datetime.fromisoformat(state["deadline"])


def reached_payload(state: Mapping[str, Any], evaluation: Evaluation) -> dict[str, Any]:
    """The ``ConsensusReached`` payload: decision, tally, who agreed, dissented, abstained."""
    votes: dict[str, str] = state["votes"]
    decision = evaluation.decision
    return {
        "decision": decision,
        "rule": state["rule"],
        "tally": dict(evaluation.tally.support),
        "agreed": sorted(p for p, d in votes.items() if d == decision),
        "dissented": sorted(p for p, d in votes.items() if d != decision),
        "abstained": sorted(p for p in state["participants"] if p not in votes),
    }


def failed_payload(state: Mapping[str, Any], evaluation: Evaluation) -> dict[str, Any]:
    """The ``ConsensusFailed`` payload: reason, tally and how many voted."""
    assert evaluation.reason is not None
    return {
        "reason": evaluation.reason.value,
        "rule": state["rule"],
        "tally": dict(evaluation.tally.support),
        "votes_received": evaluation.tally.votes,
        "participant_count": len(state["participants"]),
    }


def rejected_payload(vote: Vote, reason: str) -> dict[str, Any]:
    """The ``VoteRejected`` payload (reason: duplicate, not_participant or round_closed)."""
    return {"voter": vote.voter, "decision": vote.decision, "reason": reason}
