"""Token buckets: the algorithm in memory, 429/Retry-After over HTTP, and the Redis script for
real (atomic, EVALSHA fallback, fail closed when Redis is down)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.testclient import TestClient

import omium.gateway._ratelimit as ratelimit
from omium.gateway import (
    InMemoryRateLimiter,
    Principal,
    RedisRateLimiter,
    Role,
    buckets_for,
)
from omium.gateway._ratelimit import Bucket, decide
from omium.gateway.errors import RateLimitedError, RateLimiterUnavailableError
from omium.kernel.settings import OmiumSettings, RateLimitSettings

pytestmark = pytest.mark.anyio


def limits(
    tenant: tuple[int, float] = (2, 1.0), key: tuple[int, float] = (100, 100.0), **extra: Any
) -> RateLimitSettings:
    tier = {
        "tenant": {"capacity": tenant[0], "refill_per_s": tenant[1]},
        "api_key": {"capacity": key[0], "refill_per_s": key[1]},
    }
    tiers = {
        "standard": tier,
        "premium": {
            "tenant": {"capacity": 50, "refill_per_s": 50},
            "api_key": {"capacity": 50, "refill_per_s": 50},
        },
    }
    return RateLimitSettings.model_validate({"tiers": tiers, **extra})


def user(tenant: str = "acme") -> Principal:
    return Principal("alice", tenant, frozenset({Role.DEVELOPER}), "jwt")


def agent(key_id: str, tenant: str = "acme") -> Principal:
    return Principal(f"api-key:{key_id}", tenant, frozenset({Role.DEVELOPER}), "api_key", key_id)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the algorithm ----------------------------------------------------------------------------


async def test_bucket_refuses_when_empty_and_refills() -> None:
    clock = Clock()
    limiter = InMemoryRateLimiter(limits(tenant=(2, 1.0)), clock=clock)
    first = await limiter.acquire(user())
    assert (first.limit, first.remaining) == (2, 1)
    await limiter.acquire(user())
    with pytest.raises(RateLimitedError) as caught:
        await limiter.acquire(user())
    refused = caught.value
    assert (refused.retry_after, refused.scope, refused.remaining) == (1, "tenant", 0)
    clock.now += 1.0
    assert (await limiter.acquire(user())).remaining == 0


async def test_tenants_have_separate_buckets() -> None:
    limiter = InMemoryRateLimiter(limits(tenant=(1, 0.01)), clock=Clock())
    await limiter.acquire(user("acme"))
    await limiter.acquire(user("globex"))
    with pytest.raises(RateLimitedError):
        await limiter.acquire(user("acme"))


async def test_key_bucket_refusal_does_not_drain_the_tenant() -> None:
    limiter = InMemoryRateLimiter(limits(tenant=(3, 0.01), key=(1, 0.01)), clock=Clock())
    await limiter.acquire(agent("k1"))
    with pytest.raises(RateLimitedError) as caught:
        await limiter.acquire(agent("k1"))
    assert caught.value.scope == "api_key"
    # The refused request took nothing: the tenant still has 2 of 3 tokens.
    await limiter.acquire(agent("k2"))
    await limiter.acquire(user())
    with pytest.raises(RateLimitedError) as caught:
        await limiter.acquire(user())
    assert caught.value.scope == "tenant"


async def test_tiers_and_disabling() -> None:
    settings = limits(tenant=(1, 0.01), tenant_tiers={"bigco": "premium"})
    assert [b.capacity for b in buckets_for(user("bigco"), settings)] == [50]
    assert [b.capacity for b in buckets_for(agent("k", "acme"), settings)] == [1, 100]
    assert buckets_for(agent("k", "acme"), settings)[0].key.startswith("omium:ratelimit:{acme}")
    off = InMemoryRateLimiter(limits(tenant=(1, 0.01), enabled=False), clock=Clock())
    for _ in range(5):
        await off.acquire(user())


def test_retry_after_is_a_whole_number_rounded_up() -> None:
    bucket = Bucket(key="k", scope="tenant", capacity=5, refill_per_s=0.3)
    with pytest.raises(RateLimitedError) as caught:
        decide([bucket], [0.2], allowed=False, cost=1)
    assert caught.value.retry_after == 3  # (1 - 0.2) / 0.3 = 2.67 s
    assert caught.value.reset_after == 16  # (5 - 0.2) / 0.3 = 16 s until full


# --- over HTTP --------------------------------------------------------------------------------


@pytest.fixture
def limited_app(
    app_factory: Callable[..., FastAPI],
    services_factory: Callable[..., Any],
    gateway_settings_factory: Callable[..., OmiumSettings],
) -> FastAPI:
    settings = gateway_settings_factory(
        rate_limit={"tiers": limits(tenant=(2, 0.5)).model_dump()["tiers"]}
    )
    return app_factory(settings=settings, services=services_factory(settings))


def test_429_with_retry_after_and_ratelimit_headers(
    limited_app: FastAPI,
    client_factory: Callable[..., TestClient],
    auth_factory: Callable[..., dict[str, str]],
) -> None:
    client = client_factory(limited_app)
    headers = auth_factory("viewer")
    ok = client.get("/api/v1/whoami", headers=headers)
    assert ok.headers["ratelimit-limit"] == "2" and ok.headers["ratelimit-remaining"] == "1"
    client.get("/api/v1/whoami", headers=headers)
    refused = client.get("/api/v1/whoami", headers=headers)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "2"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.json()["retry_after"] == 2 and refused.json()["scope"] == "tenant"


def test_limiter_down_is_503_with_a_clear_body(
    app_factory: Callable[..., FastAPI],
    services_factory: Callable[..., Any],
    gateway_settings: OmiumSettings,
    client_factory: Callable[..., TestClient],
    auth_factory: Callable[..., dict[str, str]],
) -> None:
    class DownLimiter:
        async def acquire(self, principal: Principal, *, cost: int = 1) -> Any:
            raise RateLimiterUnavailableError()

        async def close(self) -> None:
            pass

    app = app_factory(services=services_factory(gateway_settings, rate_limiter=DownLimiter()))
    response = client_factory(app).get("/api/v1/whoami", headers=auth_factory("viewer"))
    assert response.status_code == 503
    assert "rate limiter is unavailable" in response.json()["detail"]


async def test_redis_unreachable_fails_closed(
    closed_port: int,
    app_factory: Callable[..., FastAPI],
    services_factory: Callable[..., Any],
    gateway_settings: OmiumSettings,
    async_client_factory: Callable[[FastAPI], httpx.AsyncClient],
    auth_factory: Callable[..., dict[str, str]],
) -> None:
    limiter = RedisRateLimiter.from_url(f"redis://127.0.0.1:{closed_port}/0", limits())
    app = app_factory(services=services_factory(gateway_settings, rate_limiter=limiter))
    async with async_client_factory(app) as client:
        response = await client.get("/api/v1/whoami", headers=auth_factory("viewer"))
    await limiter.close()
    assert response.status_code == 503
    body = response.json()
    assert body["type"].endswith("rate-limiter-unavailable")
    assert "rate limiter is unavailable" in body["detail"]
    assert response.headers["retry-after"] == "1"


# --- Redis, for real --------------------------------------------------------------------------


@pytest.fixture
async def redis_limiter_factory(
    live_redis: OmiumSettings,
) -> AsyncIterator[Callable[[RateLimitSettings], RedisRateLimiter]]:
    limiters: list[RedisRateLimiter] = []

    def build(settings: RateLimitSettings) -> RedisRateLimiter:
        limiter = RedisRateLimiter.from_url(live_redis.redis.url, settings)
        limiters.append(limiter)
        return limiter

    yield build
    for limiter in limiters:
        await limiter.close()


@pytest.mark.integration
async def test_redis_429_and_retry_after_over_http(
    redis_limiter_factory: Callable[[RateLimitSettings], RedisRateLimiter],
    app_factory: Callable[..., FastAPI],
    services_factory: Callable[..., Any],
    gateway_settings: OmiumSettings,
    async_client_factory: Callable[[FastAPI], httpx.AsyncClient],
    auth_factory: Callable[..., dict[str, str]],
    tenant_factory: Callable[[], str],
) -> None:
    limiter = redis_limiter_factory(limits(tenant=(2, 0.5)))
    app = app_factory(services=services_factory(gateway_settings, rate_limiter=limiter))
    headers = auth_factory("viewer", tenant=tenant_factory())
    async with async_client_factory(app) as client:
        statuses = [(await client.get("/api/v1/whoami", headers=headers)) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[0].headers["ratelimit-remaining"] == "1"
    assert statuses[2].headers["retry-after"] == "2"
    assert statuses[2].json()["retry_after"] == 2


@pytest.mark.integration
async def test_redis_buckets_are_atomic_under_concurrency(
    redis_limiter_factory: Callable[[RateLimitSettings], RedisRateLimiter],
    tenant_factory: Callable[[], str],
) -> None:
    limiter = redis_limiter_factory(limits(tenant=(10, 0.001)))
    tenant = tenant_factory()

    async def attempt() -> bool:
        try:
            await limiter.acquire(user(tenant))
        except RateLimitedError:
            return False
        return True

    results = await asyncio.gather(*(attempt() for _ in range(60)))
    assert sum(results) == 10


@pytest.mark.integration
async def test_more_requests_in_flight_than_connections_wait_for_one_instead_of_failing(
    redis_limiter_factory: Callable[[RateLimitSettings], RedisRateLimiter],
    tenant_factory: Callable[[], str],
) -> None:
    """Five connections, 200 decisions at once: every one is made (none "Redis unavailable")."""
    limiter = redis_limiter_factory(
        limits(tenant=(100, 0.001), redis_max_connections=5, redis_timeout_s=5.0)
    )
    tenant = tenant_factory()

    async def attempt() -> str:
        try:
            await limiter.acquire(user(tenant))
        except RateLimitedError:
            return "limited"
        return "allowed"

    results = await asyncio.gather(*(attempt() for _ in range(200)))
    assert (results.count("allowed"), results.count("limited")) == (100, 100)


@pytest.mark.integration
async def test_redis_key_and_tenant_buckets_all_or_nothing(
    redis_limiter_factory: Callable[[RateLimitSettings], RedisRateLimiter],
    tenant_factory: Callable[[], str],
) -> None:
    limiter = redis_limiter_factory(limits(tenant=(3, 0.001), key=(1, 0.001)))
    tenant = tenant_factory()
    await limiter.acquire(agent("k1", tenant))
    with pytest.raises(RateLimitedError) as caught:
        await limiter.acquire(agent("k1", tenant))
    assert caught.value.scope == "api_key"
    await limiter.acquire(agent("k2", tenant))
    await limiter.acquire(user(tenant))
    with pytest.raises(RateLimitedError) as caught:
        await limiter.acquire(user(tenant))
    assert caught.value.scope == "tenant"


@pytest.mark.integration
async def test_evalsha_falls_back_to_eval_and_buckets_expire(
    redis_limiter_factory: Callable[[RateLimitSettings], RedisRateLimiter],
    tenant_factory: Callable[[], str],
    live_redis: OmiumSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A script text the server has never seen, so the first EVALSHA must miss.
    script = f"{ratelimit.TOKEN_BUCKET_LUA}\n-- {uuid.uuid4()}\n"
    sha = hashlib.sha1(script.encode()).hexdigest()
    monkeypatch.setattr(ratelimit, "TOKEN_BUCKET_LUA", script)
    monkeypatch.setattr(ratelimit, "TOKEN_BUCKET_SHA", sha)
    client = aioredis.from_url(live_redis.redis.url)
    try:
        assert await client.script_exists(sha) == [False]
        limiter = redis_limiter_factory(limits(tenant=(5, 1.0)))
        tenant = tenant_factory()
        await limiter.acquire(user(tenant))
        assert await client.script_exists(sha) == [True]
        assert (await limiter.acquire(user(tenant))).remaining == 3
        ttl_ms = await client.pttl(f"omium:ratelimit:{{{tenant}}}:tenant")
        assert 0 < ttl_ms <= 3000 + 1000  # refills in ~2 s, plus a second of slack
    finally:
        await client.aclose()
