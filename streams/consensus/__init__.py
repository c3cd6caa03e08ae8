"""The consensus processor: votes in, one decision per round out."""

from omium.streams.consensus._processor import ROUNDS, ConsensusProcessor, UnknownRoundError

__all__ = ["ROUNDS", "ConsensusProcessor", "UnknownRoundError"]
