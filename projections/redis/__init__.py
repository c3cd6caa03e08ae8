"""The Redis read model: live state of runs, consensus tallies and event streams for fan-out."""

from omium.projections.redis._keys import RedisKeys, cursor_of, parse_cursor
from omium.projections.redis._mappers import commands_for, execution_of
from omium.projections.redis._projection import RedisProjection

__all__ = [
    "RedisKeys",
    "RedisProjection",
    "commands_for",
    "cursor_of",
    "execution_of",
    "parse_cursor",
]
