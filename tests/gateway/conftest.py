"""Fixtures for the gateway tests: settings, services, apps, clients, tokens and live servers.

Unit tests run the app on in-memory services with ``TestClient``. Integration tests (marked
``integration``) run it with ``httpx.ASGITransport`` inside the test's own event loop, so the
async PostgreSQL pool and Redis client live on the loop that serves the requests.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import psycopg
import pytest
import redis
from confluent_kafka import KafkaException
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from omium.gateway import (
    DEV_JWT_SECRET,
    GatewayServices,
    InMemoryAuditSink,
    PostgresApiKeyStore,
    create_app,
    in_memory_services,
    mint_token,
)
from omium.gateway.api import discover_routers
from omium.kernel.kafka import admin_client
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
        nested: dict[str, Any] = {}
        for group in ("auth", "rate_limit"):
            if group in gateway:
                current = getattr(base.gateway, group)
                nested[group] = current.model_validate(
                    {**current.model_dump(), **gateway.pop(group)}
                )
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
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
        )

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
        port: int = sock.getsockname()[1]
        return port


# --- live servers (integration): required, never skipped; `omium up` starts them ---------------


@pytest.fixture(scope="session")
def live_postgres() -> OmiumSettings:
    """Settings whose PostgreSQL answers; fails the test with a hint when it does not."""
    settings = load_settings(environment="test")
    try:
        with psycopg.connect(settings.postgres.dsn(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.fail(
            f"PostgreSQL at {settings.postgres.host}:{settings.postgres.port} is not "
            f"reachable ({type(exc).__name__}); run `omium up`"
        )
    return settings


@pytest.fixture(scope="session")
def live_redis() -> OmiumSettings:
    """Settings whose Redis answers; fails the test with a hint when it does not."""
    settings = load_settings(environment="test")
    client = redis.Redis.from_url(settings.redis.url, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis at {settings.redis.url} is not reachable ({type(exc).__name__}); run `omium up`"
        )
    finally:
        client.close()
    return settings


@pytest.fixture
async def postgres_store_factory(
    live_postgres: OmiumSettings,
) -> AsyncIterator[Callable[[], Awaitable[PostgresApiKeyStore]]]:
    """Builds migrated PostgreSQL API key stores on the test's loop; closes them afterwards."""
    stores: list[PostgresApiKeyStore] = []

    async def build() -> PostgresApiKeyStore:
        store = await PostgresApiKeyStore.connect(live_postgres.postgres.dsn())
        stores.append(store)
        await store.migrate()
        return store

    yield build
    for store in stores:
        await store.close()


# --- a JWKS endpoint over real HTTP on 127.0.0.1 -----------------------------------------------


class JwksServer:
    """A tiny HTTP server publishing a JWKS document; counts how often it was fetched."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                body = json.dumps(server.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def rsa_key_factory() -> Callable[..., tuple[Any, dict[str, Any]]]:
    """Builds an RSA key pair: ``(private_key, public_jwk)`` with the given ``kid``."""

    def build(kid: str = "key-1") -> tuple[Any, dict[str, Any]]:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
        jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
        return private, jwk

    return build


@pytest.fixture
def jwks_server_factory() -> Iterator[Callable[[list[dict[str, Any]]], JwksServer]]:
    """Starts JWKS servers for lists of public JWKs; stops them after the test."""
    servers: list[JwksServer] = []

    def build(keys: list[dict[str, Any]]) -> JwksServer:
        server = JwksServer({"keys": keys})
        servers.append(server)
        return server

    yield build
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def live_kafka() -> OmiumSettings:
    """Settings whose Kafka answers; fails the test with a hint when it does not."""
    settings = load_settings(environment="test")
    try:
        admin_client(settings.kafka).list_topics(timeout=5)
    except KafkaException as exc:
        pytest.fail(
            f"Kafka at {settings.kafka.bootstrap_servers} is not reachable ({exc}); run `omium up`"
        )
    return settings
