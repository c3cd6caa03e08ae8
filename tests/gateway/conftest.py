"""Fixtures for the gateway tests: settings, services, apps, clients, tokens and live servers.

Unit tests run the app on in-memory services with ``TestClient``. Integration tests (marked
``integration``) run it with ``httpx.ASGITransport`` inside the test's own event loop, so the
async PostgreSQL pool and Redis client live on the loop that serves the requests.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

import httpx
import jwt
import psycopg
import pytest
import redis
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from gateway import (
    DEV_JWT_SECRET,
    GatewayServices,
    InMemoryAuditSink,
    create_app,
    in_memory_services,
    mint_token,
)
from gateway.api import discover_routers
from omium.kernel.settings import OmiumSettings, load_settings

SettingsFactory = Callable[..., OmiumSettings]


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the gateway's loop under uvicorn)."""
    return "asyncio"


@pytest.fixture
def gateway_settings_factory() -> SettingsFactory:
    """Builds test settings; keyword arguments override fields of ``settings.gateway``.

    ``auth=`` and ``rate_limit=`` take dicts that update those nested groups.
    """

    def build(*, environment: str = "test", **gateway: Any) -> OmiumSettings:
        base = load_settings(environment=environment)
        nested = {}
        for group in ("auth", "rate_limit"):
            if group in gateway:
                current = getattr(base.gateway, group)
                nested[group] = current.model_validate({**current.model_dump(),
                                                        **gateway.pop(group)})
        merged = {**base.gateway.model_dump(), **gateway, **nested}
        return base.model_copy(update={"gateway": type(base.gateway).model_validate(merged)})

    return build


@pytest.fixture
def gateway_settings(gateway_settings_factory: SettingsFactory) -> OmiumSettings:
    """Default test settings (environment ``test``, the local stack's addresses)."""
    return gateway_settings_factory()


@pytest.fixture
def services_factory() -> Callable[..., GatewayServices]:
    """Builds in-memory services for settings; keyword arguments replace collaborators."""

    def build(settings: OmiumSettings, **replace: Any) -> GatewayServices:
        services = in_memory_services(settings)
        for name, value in replace.items():
            setattr(services, name, value)
        return services

    return build


@pytest.fixture
def app_factory(
    gateway_settings: OmiumSettings, services_factory: Callable[..., GatewayServices]
) -> Callable[..., FastAPI]:
    """Builds an app: default settings and in-memory services unless given; ``extra_routers``
    are mounted under ``/api/v1`` next to the gateway's own routers."""

    def build(
        settings: OmiumSettings | None = None,
        *,
        services: GatewayServices | None = None,
        extra_routers: Sequence[APIRouter] = (),
        routers: Sequence[APIRouter] | None = None,
    ) -> FastAPI:
        settings = settings or gateway_settings
        services = services or services_factory(settings)
        mounted = list(discover_routers() if routers is None else routers) + list(extra_routers)
        return create_app(settings, services=services, routers=mounted)

    return build


@pytest.fixture
def client_factory(app_factory: Callable[..., FastAPI]) -> Callable[..., TestClient]:
    """Builds a ``TestClient`` that returns 500 responses instead of raising."""

    def build(app: FastAPI | None = None, **app_kwargs: Any) -> TestClient:
        return TestClient(app or app_factory(**app_kwargs), raise_server_exceptions=False)

    return build


@pytest.fixture
def async_client_factory() -> Callable[[FastAPI], httpx.AsyncClient]:
    """Builds an ``httpx.AsyncClient`` calling the app in-process on the current loop."""

    def build(app: FastAPI) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gateway.test")

    return build


@pytest.fixture
def token_factory(gateway_settings: OmiumSettings) -> Callable[..., str]:
    """Mints a valid HS256 token (``roles`` as names), or signs raw ``claims`` when given."""

    def build(
        *,
        sub: str = "alice",
        tenant: str = "acme",
        roles: Iterable[str] = ("viewer",),
        claims: dict[str, Any] | None = None,
        secret: str = DEV_JWT_SECRET,
        settings: OmiumSettings | None = None,
    ) -> str:
        if claims is not None:
            return jwt.encode(claims, secret, algorithm="HS256")
        return mint_token(settings or gateway_settings, subject=sub, tenant_id=tenant, roles=roles)

    return build


@pytest.fixture
def auth_factory(token_factory: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """Builds an ``Authorization`` header for a token with these roles."""

    def build(*roles: str, tenant: str = "acme", sub: str = "alice") -> dict[str, str]:
        token = token_factory(sub=sub, tenant=tenant, roles=roles or ("viewer",))
        return {"Authorization": f"Bearer {token}"}

    return build


@pytest.fixture
def audit_of() -> Callable[[FastAPI], InMemoryAuditSink]:
    """The in-memory audit sink of an app built by ``app_factory``."""

    def get(app: FastAPI) -> InMemoryAuditSink:
        sink = app.state.services.audit
        assert isinstance(sink, InMemoryAuditSink)
        return sink

    return get


@pytest.fixture
def tenant_factory() -> Callable[[], str]:
    """A fresh tenant id, so tests on shared servers never see each other's data."""
    return lambda: f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- live servers (integration): required, never skipped; `omium up` starts them ---------------


@pytest.fixture(scope="session")
def live_postgres() -> OmiumSettings:
    """Settings whose PostgreSQL answers; fails the test with a hint when it does not."""
    settings = load_settings(environment="test")
    try:
        with psycopg.connect(settings.postgres.dsn(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.fail(f"PostgreSQL at {settings.postgres.host}:{settings.postgres.port} is not "
                    f"reachable ({type(exc).__name__}); run `omium up`")
    return settings


@pytest.fixture(scope="session")
def live_redis() -> OmiumSettings:
    """Settings whose Redis answers; fails the test with a hint when it does not."""
    settings = load_settings(environment="test")
    client = redis.Redis.from_url(settings.redis.url, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {settings.redis.url} is not reachable ({type(exc).__name__}); "
                    "run `omium up`")
    finally:
        client.close()
    return settings


@pytest.fixture
async def postgres_store_factory(
    live_postgres: OmiumSettings,
) -> AsyncIterator[Callable[[], Any]]:
    """Builds migrated PostgreSQL API key stores on the test's loop; closes them afterwards."""
    from gateway import PostgresApiKeyStore

    stores: list[PostgresApiKeyStore] = []

    async def build() -> PostgresApiKeyStore:
        store = await PostgresApiKeyStore.connect(live_postgres.postgres.dsn())
        stores.append(store)
        await store.migrate()
        return store

    yield build
    for store in stores:
        await store.close()


def wait_until(predicate: Callable[[], bool], *, timeout_s: float = 10.0) -> bool:
    """Poll ``predicate`` until it holds or the time is up; return its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
