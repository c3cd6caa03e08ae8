"""Fixtures for the command API tests: one real gateway per session on the local stack.

The app is built from settings exactly as ``omium gateway`` builds it (its lifespan connects to
PostgreSQL, Redis and Kafka), except for a fresh event-store schema and a fresh Kafka topic
prefix, so sessions never see each other's events. Each test gets its own tenant.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg import sql

from omium.gateway import create_app, mint_token
from omium.kernel.kafka import ensure_topics
from omium.kernel.settings import OmiumSettings, load_settings
from omium.projections.postgres import PostgresProjection, schema_for

API = "/api/v1"

EVENT_TABLES = {
    "workflows": "workflows_events",
    "executions": "executions_events",
    "consensus": "consensus_events",
    "policies": "policies_events",
}

POLICY_MODULE = "package omium.budget\n\ndefault allow := true\n"

Reply = Any
"""A response of starlette's ``TestClient``: ``httpx`` or ``httpx2``, whichever is installed."""


def future(seconds: float = 86_400) -> str:
    """An ISO timestamp ``seconds`` from now (UTC); a day by default."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def blob_fields(state: bytes) -> dict[str, Any]:
    """The checksum/size/storage fields of an inline checkpoint of ``state``."""
    return {
        "checksum": hashlib.sha256(state).hexdigest(),
        "size": len(state),
        "storage": "inline",
        "inline_state": base64.b64encode(state).decode("ascii"),
    }


@dataclass
class Caller:
    """A tenant's view of the gateway: requests with a token of a chosen role.

    Attributes:
        client: The session's client.
        settings: The session's settings (to mint tokens).
        tenant: This caller's tenant.
        subject: The token's ``sub``.
    """

    client: TestClient
    settings: OmiumSettings
    tenant: str
    subject: str = "alice"
    _tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, role: str = "admin", **extra: str) -> dict[str, str]:
        """``Authorization`` for ``role`` plus ``extra`` headers (``_`` become ``-``)."""
        if role not in self._tokens:
            self._tokens[role] = mint_token(
                self.settings, subject=self.subject, tenant_id=self.tenant, roles=[role]
            )
        named = {name.replace("_", "-"): value for name, value in extra.items()}
        return {"Authorization": f"Bearer {self._tokens[role]}", **named}

    def post(self, path: str, body: Any = None, *, role: str = "admin", **headers: str) -> Reply:
        """POST ``body`` as JSON (no body when ``None``) to ``/api/v1<path>``."""
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        return self.client.post(API + path, headers=self.headers(role, **headers), **kwargs)

    def get(self, path: str, *, role: str = "viewer", **params: Any) -> Reply:
        """GET ``/api/v1<path>``."""
        return self.client.get(API + path, headers=self.headers(role), params=params)

    def ok(self, response: Reply, status: int = 200) -> dict[str, Any]:
        """The JSON body of a response that must have ``status``."""
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        return body

    # Setting the scene ---------------------------------------------------------------------

    def workflow(self, name: str | None = None, steps: tuple[str, ...] = ("plan", "act")) -> str:
        """Register a workflow; its id."""
        definition = {"steps": [{"id": step, "agent": f"agents.{step}"} for step in steps]}
        body = {"name": name or f"wf-{uuid.uuid4().hex[:8]}", "definition": definition}
        return str(self.ok(self.post("/workflows", body), 201)["workflow_id"])

    def execution(self, workflow_id: str | None = None) -> str:
        """Start a run of a new (or the given) workflow; its id."""
        body = {
            "workflow_id": workflow_id or self.workflow(),
            "workflow_version": 1,
            "input": {"question": "why?"},
        }
        return str(self.ok(self.post("/executions", body), 201)["execution_id"])

    def running(self, step: str = "plan") -> str:
        """A run whose ``step`` is running; its id."""
        eid = self.execution()
        self.ok(self.post(f"/executions/{eid}/steps", {"step_id": step}))
        self.ok(self.post(f"/executions/{eid}/steps/{step}/start"))
        return eid

    def round(self, participants: tuple[str, ...] = ("a", "b", "c")) -> str:
        """Open a majority round; its id."""
        body = {"participants": list(participants), "rule": "majority", "deadline": future()}
        return str(self.ok(self.post("/consensus/rounds", body), 201)["round_id"])

    def policy(self, name: str | None = None) -> str:
        """Publish a policy; its id."""
        body = {
            "name": name or f"p-{uuid.uuid4().hex[:8]}",
            "module": POLICY_MODULE,
            "mode": "deny",
        }
        return str(self.ok(self.post("/policies", body), 201)["policy_id"])


@pytest.fixture(scope="session")
def api_schema(live_postgres: OmiumSettings) -> Iterator[str]:
    """A fresh event-store schema for this session, dropped at the end."""
    schema = f"test_api_{uuid.uuid4().hex[:10]}"
    yield schema
    with psycopg.connect(live_postgres.postgres.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="session")
def api_settings(
    live_postgres: OmiumSettings, live_redis: OmiumSettings, live_kafka: OmiumSettings
) -> OmiumSettings:
    """Test settings on the local stack: a fresh topic prefix; tenants on the premium tier
    (the suite sends hundreds of requests a second from one process)."""
    base = load_settings(environment="test")
    kafka = base.kafka.model_copy(
        update={"topic_prefix": f"test-{uuid.uuid4().hex[:10]}", "partitions": 1}
    )
    ensure_topics(kafka)
    limits = base.gateway.rate_limit.model_copy(update={"default_tier": "premium"})
    gateway = base.gateway.model_copy(update={"rate_limit": limits})
    return base.model_copy(update={"kafka": kafka, "gateway": gateway})


@pytest.fixture(scope="session")
def api_read_model(api_settings: OmiumSettings) -> Iterator[str]:
    """The session's PostgreSQL read model (the read routes query it), migrated; its schema."""
    schema = schema_for(api_settings.kafka.topic_prefix)
    PostgresProjection.open(api_settings.postgres.dsn(), schema=schema).close()
    yield schema
    with psycopg.connect(api_settings.postgres.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="session")
def api_app(api_settings: OmiumSettings, api_schema: str, api_read_model: str) -> FastAPI:
    """The whole gateway app, built from settings (real services at startup)."""
    return create_app(api_settings, event_store_schema=api_schema)


@pytest.fixture(scope="session")
def api_client(api_app: FastAPI) -> Iterator[TestClient]:
    """A client of the session's app with its lifespan running; 500s come back as responses."""
    with TestClient(api_app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def caller_factory(api_client: TestClient, api_settings: OmiumSettings) -> Callable[..., Caller]:
    """Builds callers, each in a fresh tenant unless one is given."""

    def build(tenant: str | None = None, subject: str = "alice") -> Caller:
        return Caller(api_client, api_settings, tenant or f"t-{uuid.uuid4().hex[:12]}", subject)

    return build


@pytest.fixture
def caller(caller_factory: Callable[..., Caller]) -> Caller:
    """A caller in a fresh tenant."""
    return caller_factory()


@pytest.fixture
def event_count(api_settings: OmiumSettings, api_schema: str) -> Callable[[str, str], int]:
    """Counts the stored events of one aggregate: ``event_count("executions", id)``."""

    def count(area: str, aggregate_id: str) -> int:
        table = sql.Identifier(api_schema, EVENT_TABLES[area])
        query = sql.SQL("SELECT count(*) FROM {} WHERE originator_id = %s").format(table)
        with psycopg.connect(api_settings.postgres.dsn()) as conn:
            row = conn.execute(query, (uuid.UUID(aggregate_id),)).fetchone()
        assert row is not None
        return int(row[0])

    return count


@pytest.fixture
def idempotency_count(api_settings: OmiumSettings, api_schema: str) -> Callable[[str], int]:
    """Counts the idempotency records of one tenant."""

    def count(tenant: str) -> int:
        table = sql.Identifier(api_schema, "command_idempotency")
        query = sql.SQL("SELECT count(*) FROM {} WHERE tenant_id = %s").format(table)
        with psycopg.connect(api_settings.postgres.dsn()) as conn:
            row = conn.execute(query, (tenant,)).fetchone()
        assert row is not None
        return int(row[0])

    return count
