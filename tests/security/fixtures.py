"""The security suite's gateway: the whole app on the local stack, as ``omium gateway`` builds it.

One app per session on real services (PostgreSQL event store and API keys, Redis rate limits,
Kafka audit), with a fresh event-store schema and topic prefix, a JWKS endpoint on 127.0.0.1
(RS256 beside the local HS256 secret) and a configured issuer, so every token check is live.
Tokens are built here by hand (``TokenFactory``) to forge what an attacker would send.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import psycopg
import pytest
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm
from psycopg import sql

from omium.commands.relay import OutboxRelay, RelayOptions
from omium.gateway import DEV_JWT_SECRET, create_app
from omium.kernel.kafka import (
    ConsumedEvent,
    admin_client,
    consumer_config,
    ensure_topics,
    topic_specs,
)
from omium.kernel.serde import AvroSerde, default_catalog
from omium.kernel.settings import OmiumSettings, load_settings
from omium.projections.postgres import PostgresProjection, schema_for
from omium.projections.redis import RedisProjection

API = "/api/v1"
ISSUER = "https://idp.security.test"
AUDIENCE = "omium"
JWKS_CACHE_S = 1
Reply = Any


class JwksEndpoint:
    """A JWKS document served over HTTP on 127.0.0.1; its keys can be rotated while it runs."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.hits = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.hits += 1
                document = {"keys": [jwk for _, jwk in endpoint.keys.values()]}
                body = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()

    def add_key(self, kid: str) -> Any:
        """Publish a new RSA key under ``kid``; its private key (to sign with)."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
        jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
        self.keys[kid] = (private, jwk)
        return private

    def remove_key(self, kid: str) -> None:
        """Stop publishing a key (rotated out, or compromised)."""
        self.keys.pop(kid)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@dataclass
class TokenFactory:
    """Builds tokens, valid or forged, for the session's gateway."""

    jwks: JwksEndpoint
    signing: dict[str, Any] = field(default_factory=dict)

    def claims(self, tenant: str, *roles: str, **overrides: Any) -> dict[str, Any]:
        """Valid claims for ``tenant`` (viewer by default); ``None`` values drop a claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": "alice",
            "tenant_id": tenant,
            "roles": list(roles) or ["viewer"],
            "aud": AUDIENCE,
            "iss": ISSUER,
            "iat": now,
            "exp": now + 600,
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def hs256(self, claims: dict[str, Any], *, secret: str = DEV_JWT_SECRET, **header: Any) -> str:
        """An HS256 token (with the gateway's secret unless told otherwise)."""
        return jwt.encode(claims, secret, algorithm="HS256", headers=header or None)

    def rs256(self, claims: dict[str, Any], *, kid: str = "key-1", key: Any = None) -> str:
        """An RS256 token signed with the JWKS key ``kid`` (or another ``key``)."""
        private = key if key is not None else self.jwks.keys[kid][0]
        return jwt.encode(claims, private, algorithm="RS256", headers={"kid": kid})


@dataclass
class Tenant:
    """A tenant's view of the session's gateway."""

    client: TestClient
    tokens: TokenFactory
    name: str

    def headers(self, role: str = "admin", **extra: str) -> dict[str, str]:
        """``Authorization`` with an RS256 token of ``role`` plus ``extra`` headers."""
        token = self.tokens.rs256(self.tokens.claims(self.name, role))
        return {"Authorization": f"Bearer {token}", **extra}

    def get(self, path: str, *, role: str = "viewer", **params: Any) -> Reply:
        """GET ``/api/v1<path>``."""
        return self.client.get(API + path, headers=self.headers(role), params=params)

    def post(self, path: str, body: Any = None, *, role: str = "admin") -> Reply:
        """POST JSON to ``/api/v1<path>``."""
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        return self.client.post(API + path, headers=self.headers(role), **kwargs)

    def ok(self, response: Reply, status: int = 200) -> Any:
        """The JSON of a response that must have ``status``."""
        assert response.status_code == status, response.text
        return response.json()

    def run(self, *, steps: tuple[str, ...] = ("plan",)) -> str:
        """A run with a completed first step and a checkpoint after it; its id."""
        definition = {"steps": [{"id": s, "agent": f"agents.{s}:run"} for s in steps]}
        wid = self.ok(
            self.post(
                "/workflows", {"name": f"wf-{uuid.uuid4().hex[:8]}", "definition": definition}
            ),
            201,
        )["workflow_id"]
        body = {"workflow_id": wid, "workflow_version": 1, "input": {"q": "secret plans"}}
        eid = self.ok(self.post("/executions", body), 201)["execution_id"]
        self.ok(self.post(f"/executions/{eid}/steps", {"step_id": steps[0]}))
        self.ok(self.post(f"/executions/{eid}/steps/{steps[0]}/start"))
        state = b'{"notes": "tenant-private"}'
        checkpoint = {
            "step_id": steps[0],
            "position": "after",
            "checkpoint_id": "cp-1",
            "checksum": hashlib.sha256(state).hexdigest(),
            "size": len(state),
            "storage": "inline",
            "inline_state": base64.b64encode(state).decode(),
        }
        self.ok(self.post(f"/executions/{eid}/checkpoints", checkpoint), 201)
        return str(eid)


@pytest.fixture(scope="session")
def jwks() -> Iterator[JwksEndpoint]:
    """The session's identity provider keys (``key-1`` published)."""
    endpoint = JwksEndpoint()
    endpoint.add_key("key-1")
    yield endpoint
    endpoint.close()


@pytest.fixture(scope="session")
def security_settings(stack: OmiumSettings, jwks: JwksEndpoint) -> Iterator[OmiumSettings]:
    """Test settings: fresh topics, RS256 via the JWKS endpoint and HS256, a required issuer."""
    base = load_settings(environment="test")
    kafka = base.kafka.model_copy(
        update={"topic_prefix": f"sec-{uuid.uuid4().hex[:10]}", "partitions": 1}
    )
    ensure_topics(kafka)
    auth = base.gateway.auth.model_copy(
        update={"jwks_url": jwks.url, "jwks_cache_s": JWKS_CACHE_S, "issuer": ISSUER}
    )
    limits = base.gateway.rate_limit.model_copy(update={"default_tier": "premium"})
    gateway = base.gateway.model_copy(update={"auth": auth, "rate_limit": limits})
    yield base.model_copy(update={"kafka": kafka, "gateway": gateway})
    futures = admin_client(kafka).delete_topics([spec.name for spec in topic_specs(kafka)])
    for future in futures.values():
        with contextlib.suppress(Exception):
            future.result(timeout=30)


@pytest.fixture(scope="session")
def security_schema(security_settings: OmiumSettings) -> Iterator[str]:
    """The session's event-store schema and read model, dropped at the end."""
    schema = f"test_sec_{uuid.uuid4().hex[:10]}"
    read_model = schema_for(security_settings.kafka.topic_prefix)
    PostgresProjection.open(security_settings.postgres.dsn(), schema=read_model).close()
    yield schema
    with psycopg.connect(security_settings.postgres.dsn(), autocommit=True) as conn:
        for name in (schema, read_model):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def app_factory(security_settings: OmiumSettings, security_schema: str) -> Callable[..., FastAPI]:
    """Builds apps on the session's settings and schema (each is a gateway replica)."""

    def build(**gateway: Any) -> FastAPI:
        settings = security_settings
        if gateway:
            updated = security_settings.gateway.model_copy(update=gateway)
            settings = security_settings.model_copy(update={"gateway": updated})
        return create_app(settings, event_store_schema=security_schema)

    return build


@pytest.fixture(scope="session")
def security_client(app_factory: Callable[..., FastAPI]) -> Iterator[TestClient]:
    """A client of the session's gateway with its lifespan running (500s come back)."""
    with TestClient(app_factory(), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="session")
def tokens(jwks: JwksEndpoint) -> TokenFactory:
    """Builds valid and forged tokens."""
    return TokenFactory(jwks)


@pytest.fixture
def tenant_factory(security_client: TestClient, tokens: TokenFactory) -> Callable[[], Tenant]:
    """Builds callers, each in a fresh tenant."""
    return lambda: Tenant(security_client, tokens, f"t-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def project_everything(
    security_settings: OmiumSettings, security_schema: str
) -> Iterator[Callable[[], None]]:
    """Relays every stored event to Kafka and applies them to the PostgreSQL and Redis read
    models (as the live projections would); the Redis keys are deleted afterwards."""
    prefix = security_settings.kafka.topic_prefix
    live = RedisProjection.open(security_settings.redis.url, topic_prefix=prefix)

    def project() -> None:
        options = RelayOptions(progress_interval_s=60.0)
        with OutboxRelay.create(
            security_settings, schema=security_schema, options=options, create_topics=False
        ) as relay:
            relay.run(once=True)
        rows = PostgresProjection.open(security_settings.postgres.dsn(), schema=schema_for(prefix))
        try:
            for projection in (rows, live):
                for offset, event in enumerate(_domain_events(security_settings)):
                    projection.apply(
                        ConsumedEvent(
                            topic="direct",
                            partition=0,
                            offset=offset,
                            key=None,
                            event=event,
                            raw=b"",
                        )
                    )
                projection.flush({}, expected={})
        finally:
            rows.close()

    yield project
    client = redis.Redis.from_url(security_settings.redis.url)
    for key in client.scan_iter(match=f"{live.keys.prefix}:*", count=1000):
        client.delete(key)
    client.close()
    live.close()


def _domain_events(settings: OmiumSettings) -> list[dict[str, Any]]:
    serde = AvroSerde(default_catalog())
    prefix = settings.kafka.topic_prefix
    topics = [f"{prefix}.{area}" for area in ("workflows", "executions", "consensus", "policies")]
    config = consumer_config(
        settings.kafka, f"sec-{uuid.uuid4().hex[:8]}", **{"enable.partition.eof": True}
    )
    consumer = Consumer(config)
    events: list[dict[str, Any]] = []
    try:
        consumer.assign([TopicPartition(t, 0, OFFSET_BEGINNING) for t in topics])
        ended: set[str] = set()
        deadline = time.monotonic() + 30
        while len(ended) < len(topics):
            assert time.monotonic() < deadline, "topics not read to the end"
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                ended.add(str(message.topic()))
            elif error is None:
                value = message.value()
                assert isinstance(value, bytes)
                events.append(serde.decode(value))
    finally:
        consumer.close()
    return events
