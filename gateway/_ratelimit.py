"""Token buckets per tenant and per API key: atomic in Redis (Lua), or in memory for unit tests.

A request takes one token from every bucket that applies to it (the tenant's, plus the key's
for API-key callers) or from none: the script checks all of them before it takes any, so a refused
request never drains a bucket. Redis's own clock is used, so gateways with skewed clocks agree.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from omium.gateway._principal import Principal
from omium.gateway.errors import RateLimitedError, RateLimiterUnavailableError
from omium.kernel.settings import BucketSettings, RateLimitSettings

log = structlog.get_logger(__name__)

# KEYS: the buckets. ARGV[1]: cost; ARGV[2i], ARGV[2i+1]: capacity and refill/s of KEYS[i].
# Returns {allowed (0|1), level_1, ..., level_n} with levels as strings (Lua numbers would be
# truncated to integers in the reply). Time is kept in milliseconds so it prints exactly.
TOKEN_BUCKET_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local levels = {}
local allowed = 1
for i = 1, #KEYS do
  local capacity = tonumber(ARGV[2 * i])
  local rate = tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
  local level = tonumber(state[1]) or capacity
  local ts = tonumber(state[2]) or now
  level = math.min(capacity, level + math.max(0, now - ts) * rate / 1000)
  levels[i] = level
  if level < cost then allowed = 0 end
end
local reply = {allowed}
for i = 1, #KEYS do
  local capacity = tonumber(ARGV[2 * i])
  local rate = tonumber(ARGV[2 * i + 1])
  if allowed == 1 then
    levels[i] = levels[i] - cost
    redis.call('HSET', KEYS[i], 'tokens', string.format('%.6f', levels[i]),
               'ts', string.format('%.0f', now))
    -- An idle bucket is full again after this long; then it may as well not exist.
    redis.call('PEXPIRE', KEYS[i], math.ceil((capacity - levels[i]) / rate * 1000) + 1000)
  end
  reply[i + 1] = string.format('%.6f', levels[i])
end
return reply
"""
TOKEN_BUCKET_SHA = hashlib.sha1(TOKEN_BUCKET_LUA.encode()).hexdigest()


@dataclass(frozen=True)
class Bucket:
    """One bucket a request draws from."""

    key: str
    scope: str
    capacity: int
    refill_per_s: float


@dataclass(frozen=True)
class RateDecision:
    """An admitted request's view of its tightest bucket, for ``RateLimit-*`` headers."""

    limit: int
    remaining: int
    reset_after: int


class RateLimiter(Protocol):
    """Admits a request or raises; implementations share ``buckets_for`` and ``decide``."""

    async def acquire(self, principal: Principal, *, cost: int = 1) -> RateDecision:
        """Take ``cost`` tokens from each of the principal's buckets.

        Raises:
            RateLimitedError: A bucket has too few tokens (nothing was taken).
            RateLimiterUnavailableError: The bucket store cannot be reached.
        """
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def buckets_for(principal: Principal, settings: RateLimitSettings) -> list[Bucket]:
    """The tenant's bucket, plus the key's when the caller used an API key.

    Keys share the hash tag ``{tenant}`` so both land in one Redis Cluster slot, which a
    multi-key script needs.
    """
    tier_name = settings.tenant_tiers.get(principal.tenant_id, settings.default_tier)
    tier = settings.tiers.get(tier_name) or settings.tiers[settings.default_tier]
    base = f"{settings.key_prefix}:{{{principal.tenant_id}}}"
    buckets = [_bucket(f"{base}:tenant", "tenant", tier.tenant)]
    if principal.key_id is not None:
        buckets.append(_bucket(f"{base}:key:{principal.key_id}", "api_key", tier.api_key))
    return buckets


def _bucket(key: str, scope: str, limits: BucketSettings) -> Bucket:
    return Bucket(key=key, scope=scope, capacity=limits.capacity, refill_per_s=limits.refill_per_s)


def decide(
    buckets: Sequence[Bucket], levels: Sequence[float], *, allowed: bool, cost: int
) -> RateDecision:
    """Turn bucket levels after a check into a decision, or raise ``RateLimitedError``."""
    pairs = list(zip(buckets, levels, strict=True))
    if not allowed:
        bucket, level = max(pairs, key=lambda pair: (cost - pair[1]) / pair[0].refill_per_s)
        wait = (cost - level) / bucket.refill_per_s
        raise RateLimitedError(
            retry_after=max(1, math.ceil(wait)),
            limit=bucket.capacity,
            remaining=max(0, math.floor(level)),
            reset_after=math.ceil((bucket.capacity - level) / bucket.refill_per_s),
            scope=bucket.scope,
        )
    bucket, level = min(pairs, key=lambda pair: pair[1] / pair[0].capacity)
    return RateDecision(
        limit=bucket.capacity,
        remaining=max(0, math.floor(level)),
        reset_after=math.ceil((bucket.capacity - level) / bucket.refill_per_s),
    )


def _unlimited() -> RateDecision:
    return RateDecision(limit=0, remaining=0, reset_after=0)


class RedisRateLimiter:
    """Token buckets in Redis, updated atomically by one Lua script (EVALSHA, EVAL fallback)."""

    def __init__(self, client: aioredis.Redis, settings: RateLimitSettings) -> None:
        self._redis = client
        self._settings = settings

    @classmethod
    def from_url(cls, url: str, settings: RateLimitSettings) -> RedisRateLimiter:
        """A limiter on its own client with short timeouts and no retries (fail fast, closed).

        The pool is bounded and blocking: under a burst, a request waits (up to the same short
        timeout) for one of its connections instead of being refused at once as if Redis were
        down, which an unbounded-looking pool of redis-py 8 (100 connections, then
        ``MaxConnectionsError``) did at about 100 requests in flight.
        """
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=settings.redis_max_connections,
            timeout=settings.redis_timeout_s,
            socket_timeout=settings.redis_timeout_s,
            socket_connect_timeout=settings.redis_timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(aioredis.Redis(connection_pool=pool), settings)

    async def acquire(self, principal: Principal, *, cost: int = 1) -> RateDecision:
        """Take tokens from the principal's buckets in one atomic script run."""
        if not self._settings.enabled:
            return _unlimited()
        buckets = buckets_for(principal, self._settings)
        keys = [bucket.key for bucket in buckets]
        args: list[str | int | float] = [cost]
        for bucket in buckets:
            args += [bucket.capacity, bucket.refill_per_s]
        try:
            reply = await self._run(keys, args)
        except RedisError as exc:
            log.warning("rate limiter unavailable", error=type(exc).__name__)
            raise RateLimiterUnavailableError() from None
        allowed, *levels = reply
        return decide(
            buckets, [float(level) for level in levels], allowed=int(allowed) == 1, cost=cost
        )

    async def _run(self, keys: list[str], args: list[str | int | float]) -> list[bytes | int]:
        try:
            reply: list[bytes | int] = await self._redis.evalsha(
                TOKEN_BUCKET_SHA, len(keys), *keys, *args
            )
            return reply
        except NoScriptError:
            # First call on this server (or after SCRIPT FLUSH / failover): EVAL loads it.
            loaded: list[bytes | int] = await self._redis.eval(
                TOKEN_BUCKET_LUA, len(keys), *keys, *args
            )
            return loaded

    async def close(self) -> None:
        """Close the Redis client."""
        await self._redis.aclose()


class InMemoryRateLimiter:
    """The same buckets in process memory, for unit tests (not shared between processes)."""

    def __init__(
        self, settings: RateLimitSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._state: dict[str, tuple[float, float]] = {}

    async def acquire(self, principal: Principal, *, cost: int = 1) -> RateDecision:
        """Take tokens from the principal's buckets, all or none."""
        if not self._settings.enabled:
            return _unlimited()
        now = self._clock()
        buckets = buckets_for(principal, self._settings)
        levels = [self._level(bucket, now) for bucket in buckets]
        allowed = all(level >= cost for level in levels)
        if allowed:
            levels = [level - cost for level in levels]
            for bucket, level in zip(buckets, levels, strict=True):
                self._state[bucket.key] = (level, now)
        return decide(buckets, levels, allowed=allowed, cost=cost)

    def _level(self, bucket: Bucket, now: float) -> float:
        level, since = self._state.get(bucket.key, (float(bucket.capacity), now))
        return min(bucket.capacity, level + max(0.0, now - since) * bucket.refill_per_s)

    async def close(self) -> None:
        """Nothing to release."""
