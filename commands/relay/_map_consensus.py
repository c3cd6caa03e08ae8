"""Consensus round events → Avro (area ``consensus``).

The domain's ``subject`` is the round's ``question``; a round without weights is sent with an
empty ``weights`` map (every participant weighs 1). Decisions carry the tally but not the rule or
who agreed: consumers that need those read the round's ``ConsensusRoundOpened`` and ``VoteCast``
events, which precede the decision in the same partition.
"""

from __future__ import annotations

from typing import Any

from omium.commands.consensus import ConsensusRound
from omium.commands.relay._mapping import PayloadMapping, area_mappings, float_map


def round_opened(event: Any) -> dict[str, Any]:
    """``ConsensusRoundOpened``: participants, rule and deadline."""
    return {
        "execution_id": event.execution_id,
        "step_id": None,
        "question": event.subject,
        "options": [],
        "participants": list(event.participants),
        "weights": float_map(event.weights),
        "rule": event.rule,
        "threshold": None if event.threshold is None else float(event.threshold),
        "k": event.k,
        "deadline": event.deadline,
    }


def vote_cast(event: Any) -> dict[str, Any]:
    """``VoteCast``: the participant is the voter, the choice the decision."""
    return {
        "voter": event.participant,
        "decision": event.choice,
        "weight": float(event.weight),
        "confidence": None,
        "rationale": event.rationale,
    }


def consensus_reached(event: Any) -> dict[str, Any]:
    """``ConsensusReached``: the decision and the final tally."""
    return {
        "decision": event.decision,
        "rule": None,
        "tally": float_map(event.tally),
        "agreed": None,
        "dissented": None,
        "abstained": None,
    }


def consensus_failed(event: Any) -> dict[str, Any]:
    """``ConsensusFailed``: why (timeout, split, insufficient votes) and the final tally."""
    return {
        "reason": event.reason,
        "rule": None,
        "tally": float_map(event.tally),
        "votes_received": None,
        "participant_count": None,
    }


MAPPINGS = area_mappings(
    ConsensusRound,
    {
        "ConsensusRoundOpened": PayloadMapping("ConsensusRoundOpened", 1, round_opened),
        "VoteCast": PayloadMapping("VoteCast", 1, vote_cast),
        "ConsensusReached": PayloadMapping("ConsensusReached", 1, consensus_reached),
        "ConsensusFailed": PayloadMapping("ConsensusFailed", 1, consensus_failed),
    },
)
"""Stored topic → mapping for every ``ConsensusRound`` event."""
