"""A real gateway for the client tests: uvicorn on 127.0.0.1 (a free port) on the local stack.

Built from settings exactly as ``omium gateway`` builds it, with a fresh event-store schema and
Kafka topic prefix per session so sessions never see each other's data. Each test works in its
own tenant.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import uvicorn
from psycopg import sql

from omium.gateway import create_app, mint_token
from omium.kernel.kafka import ensure_topics
from omium.kernel.settings import OmiumSettings, load_settings
from omium.sdk.client import AsyncClient, Client


@dataclass(frozen=True)
class LiveGateway:
    """A gateway served over HTTP for the session.

    Attributes:
        url: Its base URL.
        settings: Its settings (to mint tokens, reach its read models).
        schema: Its event-store schema.
    """

    url: str
    settings: OmiumSettings
    schema: str

    def token(self, *roles: str, tenant: str, subject: str = "alice") -> str:
        """A JWT for ``tenant`` with ``roles`` (developer by default)."""
        return mint_token(
            self.settings, subject=subject, tenant_id=tenant, roles=list(roles) or ["developer"]
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _session_settings() -> OmiumSettings:
    base = load_settings(environment="test")
    kafka = base.kafka.model_copy(
        update={"topic_prefix": f"sdk-{uuid.uuid4().hex[:10]}", "partitions": 1}
    )
    ensure_topics(kafka)
    # Premium tier: the suites send hundreds of requests a second from one process.
    limits = base.gateway.rate_limit.model_copy(update={"default_tier": "premium"})
    gateway = base.gateway.model_copy(update={"rate_limit": limits})
    return base.model_copy(update={"kafka": kafka, "gateway": gateway})


@pytest.fixture(scope="session")
def live_gateway(stack: OmiumSettings) -> Iterator[LiveGateway]:
    """The session's gateway on a free loopback port; stopped and its schema dropped after."""
    settings = _session_settings()
    schema = f"test_sdk_{uuid.uuid4().hex[:10]}"
    port = _free_port()
    app = create_app(settings, event_store_schema=schema)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="sdk-test-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the test gateway did not start (see its log above)")
        time.sleep(0.05)
    try:
        yield LiveGateway(f"http://127.0.0.1:{port}", settings, schema)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def tenant() -> str:
    """A fresh tenant id."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client_factory(live_gateway: LiveGateway, tenant: str) -> Iterator[Callable[..., Client]]:
    """Builds sync clients of the live gateway in this test's tenant (closed afterwards)."""
    clients: list[Client] = []

    def build(*roles: str, **kwargs: Any) -> Client:
        client = Client(live_gateway.url, token=live_gateway.token(*roles, tenant=tenant), **kwargs)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def async_client_factory(live_gateway: LiveGateway, tenant: str) -> Callable[..., AsyncClient]:
    """Builds async clients of the live gateway in this test's tenant (use ``async with``)."""

    def build(*roles: str, **kwargs: Any) -> AsyncClient:
        return AsyncClient(
            live_gateway.url, token=live_gateway.token(*roles, tenant=tenant), **kwargs
        )

    return build
