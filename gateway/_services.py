"""What the gateway's dependencies talk to, built once per app, and the readiness checks."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import psycopg
import redis.asyncio as aioredis
from confluent_kafka.admin import AdminClient

from omium.commands import EVENT_STORE_SCHEMA, CommandApplications, event_store_env
from omium.gateway._api_keys import ApiKeys, InMemoryApiKeyStore
from omium.gateway._api_keys_pg import PostgresApiKeyStore
from omium.gateway._audit import AuditSink, InMemoryAuditSink, LogAuditSink
from omium.gateway._audit_kafka import KafkaAuditSink
from omium.gateway._jwt import TokenVerifier
from omium.gateway._ratelimit import InMemoryRateLimiter, RateLimiter, RedisRateLimiter
from omium.kernel.kafka import admin_client
from omium.kernel.settings import KafkaSettings, OmiumSettings

ReadinessCheck = Callable[[], Awaitable[object]]


@dataclass
class GatewayServices:
    """The collaborators of one gateway app.

    Attributes:
        tokens: Verifies bearer JWTs.
        api_keys: Creates, checks and revokes API keys.
        rate_limiter: Admits or refuses requests.
        audit: Records commands.
        readiness: ``/ready``'s checks by name; each raises when its dependency is down.
        commands: The write side's command applications (``None``: the command routes answer
            500, which only a test that injects partial services should ever see).
    """

    tokens: TokenVerifier
    api_keys: ApiKeys
    rate_limiter: RateLimiter
    audit: AuditSink
    readiness: Mapping[str, ReadinessCheck] = field(default_factory=dict)
    commands: CommandApplications | None = None

    async def aclose(self) -> None:
        """Close every collaborator (each one even if another fails)."""
        results = await asyncio.gather(
            self.audit.close(),
            self.rate_limiter.close(),
            self.api_keys.store.close(),
            self._close_commands(),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _close_commands(self) -> None:
        if self.commands is not None:
            # Closing joins the connection pools' threads: keep it off the event loop.
            await asyncio.to_thread(self.commands.close)


def in_memory_services(settings: OmiumSettings) -> GatewayServices:
    """Services without servers (unit tests, or trying the API without the stack)."""
    return GatewayServices(
        tokens=TokenVerifier.from_settings(settings),
        api_keys=ApiKeys(InMemoryApiKeyStore()),
        rate_limiter=InMemoryRateLimiter(settings.gateway.rate_limit),
        audit=InMemoryAuditSink(),
        commands=CommandApplications.create(event_store_env(settings, backend="popo")),
    )


async def build_services(
    settings: OmiumSettings, *, event_store_schema: str = EVENT_STORE_SCHEMA
) -> GatewayServices:
    """The production collaborators: PostgreSQL, Redis, Kafka (``api_keys`` is migrated here).

    Args:
        settings: Everything configurable.
        event_store_schema: The PostgreSQL schema of the command applications' event tables
            (tests and benchmarks use a fresh one).

    Raises:
        ConfigurationError: Auth settings are unusable (e.g. production without a secret).
        PersistenceError: The ``api_keys`` migration could not run, or the event store could
            not be opened.
    """
    gateway = settings.gateway
    tokens = TokenVerifier.from_settings(settings)
    store = await PostgresApiKeyStore.connect(
        settings.postgres.dsn(), timeout_s=max(gateway.ready_timeout_s, 5.0)
    )
    commands: CommandApplications | None = None
    try:
        await store.migrate()
        env = event_store_env(settings, schema=event_store_schema)
        # Constructing the applications connects and creates tables synchronously.
        commands = await asyncio.to_thread(CommandApplications.create, env)
        limiter = RedisRateLimiter.from_url(settings.redis.url, gateway.rate_limit)
        audit = _audit_sink(settings)
    except BaseException:
        await store.close()
        if commands is not None:
            await asyncio.to_thread(commands.close)
        raise
    return GatewayServices(
        tokens=tokens,
        api_keys=ApiKeys(store, cache_ttl_s=settings.gateway.api_key_cache_ttl_s),
        rate_limiter=limiter,
        audit=audit,
        readiness=default_readiness(settings),
        commands=commands,
    )


def _audit_sink(settings: OmiumSettings) -> AuditSink:
    if settings.gateway.audit_sink == "log":
        return LogAuditSink()
    return KafkaAuditSink.from_settings(settings)


def default_readiness(settings: OmiumSettings) -> dict[str, ReadinessCheck]:
    """Checks that PostgreSQL, Redis and Kafka answer, each within ``ready_timeout_s``."""
    timeout = settings.gateway.ready_timeout_s
    kafka = KafkaProbe(settings.kafka, timeout_s=timeout)
    return {
        "postgres": lambda: check_postgres(settings.postgres.dsn(), timeout_s=timeout),
        "redis": lambda: check_redis(settings.redis.url, timeout_s=timeout),
        "kafka": kafka.check,
    }


async def check_postgres(dsn: str, *, timeout_s: float) -> None:
    """Open a connection and run ``SELECT 1``."""
    conn = await psycopg.AsyncConnection.connect(dsn, connect_timeout=max(1, math.ceil(timeout_s)))
    async with conn:
        await conn.execute("SELECT 1")


async def check_redis(url: str, *, timeout_s: float) -> None:
    """``PING`` on a fresh connection (a pooled one could hide a restarted server)."""
    client = aioredis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        await client.ping()
    finally:
        await client.aclose()


class KafkaProbe:
    """Asks the cluster for its metadata with one long-lived admin client."""

    def __init__(self, kafka: KafkaSettings, *, timeout_s: float) -> None:
        self._kafka = kafka
        self._timeout_s = timeout_s
        self._admin: AdminClient | None = None

    async def check(self) -> None:
        """Fetch cluster metadata; raises ``KafkaException`` when no broker answers."""
        await asyncio.to_thread(self._list_topics)

    def _list_topics(self) -> None:
        if self._admin is None:
            self._admin = admin_client(self._kafka)
        self._admin.list_topics(timeout=self._timeout_s)


async def run_checks(checks: Mapping[str, ReadinessCheck], *, timeout_s: float) -> dict[str, str]:
    """Run every check concurrently; ``{name: "ok" | "timeout" | <error class>}``."""

    async def one(check: ReadinessCheck) -> str:
        try:
            await asyncio.wait_for(check(), timeout_s)
        except TimeoutError:
            return "timeout"
        except Exception as exc:
            # The class name says enough; messages may carry hosts or credentials.
            return f"unreachable ({type(exc).__name__})"
        return "ok"

    names = list(checks)
    states = await asyncio.gather(*(one(checks[name]) for name in names))
    return dict(zip(names, states, strict=True))
