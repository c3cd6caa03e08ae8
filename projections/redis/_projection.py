"""The Redis projection: live run state, consensus tallies and event streams for fan-out.

A batch is applied by one Lua script, atomically: it checks that the stored offsets are the ones
this writer expects, skips events already applied (a ``seen`` marker per event id), runs the
commands of the others and stores the new offsets. So Redis, too, is effectively exactly-once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Self

import redis

from omium.kernel.kafka import Area, ConsumedEvent
from omium.projections.base import BatchingProjection, Expected, Offsets, OffsetsMovedError
from omium.projections.base.errors import ProjectionStoreError, TopicPartition
from omium.projections.redis._keys import RedisKeys, offset_field, parse_offset_field
from omium.projections.redis._mappers import Command, commands_for

# How long the "already applied" marker of an event is kept: longer than any redelivery.
SEEN_TTL_S = 7 * 24 * 3600

_BATCH_SCRIPT = """
local req = cjson.decode(ARGV[1])
for field, want in pairs(req.expected) do
  local stored = redis.call('HGET', req.offsets, field)
  if want == '' then
    if stored then return {'moved'} end
  elseif stored ~= want then
    return {'moved'}
  end
end
local writes = 0
for _, ev in ipairs(req.events) do
  if redis.call('SET', ev.seen, '1', 'NX', 'EX', req.seen_ttl) then
    for _, op in ipairs(ev.ops) do
      if op[1] == 'HSETIF' then
        if redis.call('HGET', op[2], op[3]) == op[4] then
          redis.call('HSET', op[2], op[3], op[5])
        end
      else
        redis.call(unpack(op))
      end
      writes = writes + 1
    end
  end
end
for field, offset in pairs(req.next) do
  redis.call('HSET', req.offsets, field, offset)
end
return {'ok', writes}
"""


class RedisProjection(BatchingProjection[Command]):
    """Live state for dashboards and subscribers.

    Args:
        client: A Redis client with ``decode_responses=True``; the projection owns it.
        keys: The key names (by topic prefix).
        ages_from_events: Expire ended runs' and rounds' keys counting from the event's
            ``occurred_at`` rather than from now (a rebuild from the whole log would otherwise
            bring back a day's worth of every run that ever ended).
    """

    name = "redis"
    areas = (Area.WORKFLOWS, Area.EXECUTIONS, Area.FAILURES, Area.CONSENSUS, Area.POLICIES)
    keeps_offsets = True

    def __init__(
        self, client: redis.Redis, *, keys: RedisKeys, ages_from_events: bool = False
    ) -> None:
        super().__init__()
        self._client = client
        self._keys = keys
        self._ages_from_events = ages_from_events
        self._script = client.register_script(_BATCH_SCRIPT)

    @classmethod
    def open(cls, url: str, *, topic_prefix: str) -> Self:
        """Connect to Redis at ``url`` for the read model of ``topic_prefix``."""
        client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=10)
        return cls(client, keys=RedisKeys.for_prefix(topic_prefix))

    @property
    def keys(self) -> RedisKeys:
        """The key names written."""
        return self._keys

    def prepare(self, consumed: ConsumedEvent) -> Sequence[Command]:
        """The commands of one event."""
        commands = commands_for(consumed.event, self._keys)
        if not self._ages_from_events:
            return commands
        # An expiry in the past deletes the key at once: the script applies an event's
        # commands in order, so a later event of the same run finds no stale state.
        occurred = int(consumed.event["occurred_at"].timestamp())
        return [
            ["EXPIREAT", c[1], str(occurred + int(c[2]))] if c[0] == "EXPIRE" else c
            for c in commands
        ]

    def write(
        self,
        batch: Sequence[tuple[ConsumedEvent, Sequence[Command]]],
        offsets: Offsets,
        expected: Expected,
    ) -> int:
        """Run the batch script.

        Raises:
            OffsetsMovedError: The stored offsets are not ``expected`` (nothing written).
            ProjectionStoreError: Redis failed (nothing written: the script is atomic).
        """
        request = {
            "offsets": self._keys.offsets,
            "seen_ttl": SEEN_TTL_S,
            "expected": {
                offset_field(t, p): "" if o is None else str(o) for (t, p), o in expected.items()
            },
            "next": {offset_field(t, p): str(o) for (t, p), o in offsets.items()},
            "events": [
                {"seen": self._keys.seen(str(c.event["event_id"])), "ops": list(ops)}
                for c, ops in batch
            ],
        }
        try:
            result = self._script(args=[json.dumps(request)])
        except redis.RedisError as exc:
            raise ProjectionStoreError(f"Redis batch failed: {exc}") from exc
        if result[0] == "moved":
            raise OffsetsMovedError(self.stored_offsets())
        return int(result[1])

    def stored_offsets(self) -> dict[TopicPartition, int]:
        """Every offset stored in the offsets hash."""
        try:
            stored = self._client.hgetall(self._keys.offsets)
        except redis.RedisError as exc:
            raise ProjectionStoreError(f"reading Redis offsets failed: {exc}") from exc
        return {parse_offset_field(str(field)): int(value) for field, value in stored.items()}

    def close(self) -> None:
        """Close the client."""
        self._client.close()
