"""Consensus rounds, and the pure rule logic the consensus stream processor reuses."""

from omium.commands.consensus._rules import (
    Evaluation,
    FailureReason,
    RoundRule,
    RoundStatus,
    Rule,
    Tally,
    can_still_be_met,
    evaluate,
    tally_votes,
)
from omium.commands.consensus.application import ConsensusApplication, ConsensusRoundView
from omium.commands.consensus.domain import ConsensusRound

__all__ = [
    # Aggregate
    "ConsensusRound",
    # Application and views
    "ConsensusApplication",
    "ConsensusRoundView",
    # Rules and tallying (pure)
    "Evaluation",
    "FailureReason",
    "RoundRule",
    "RoundStatus",
    "Rule",
    "Tally",
    "can_still_be_met",
    "evaluate",
    "tally_votes",
]
