"""The Redis read model: live state of runs, consensus tallies and event streams for fan-out."""

from projections.redis._keys import RedisKeys
from projections.redis._mappers import commands_for, execution_of
from projections.redis._projection import RedisProjection

__all__ = [
    "RedisKeys",
    "RedisProjection",
    "commands_for",
    "execution_of",
]
