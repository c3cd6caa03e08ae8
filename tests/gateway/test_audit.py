"""The audit hook: every command, accepted or refused, is recorded; on Kafka as CommandRecorded."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from omium.commands.errors import NotFoundError
from omium.gateway import (
    AuditEntry,
    Command,
    InMemoryAuditSink,
    KafkaAuditSink,
    Principal,
    Role,
    audit_payload,
    requires,
)
from omium.gateway._audit_kafka import command_recorded
from omium.kernel.events import verify_chain
from omium.kernel.kafka import EventProducer, consumer_config, ensure_topics
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import OmiumSettings

router = APIRouter(prefix="/runs", tags=["test"])


@router.post("/{run_id}/halt", dependencies=[requires(Role.OPERATOR, command="executions.halt")])
async def halt(run_id: str, ctx: Command) -> dict[str, str]:
    """Halts known runs; ``missing`` is unknown and ``crash`` is a bug."""
    ctx.set_target(run_id)
    if run_id == "missing":
        raise NotFoundError(run_id, aggregate_type="Execution")
    if run_id == "crash":
        raise RuntimeError("bug")
    return {"halted": run_id}


@router.get("/{run_id}", dependencies=[requires(Role.VIEWER)])
async def read(run_id: str) -> dict[str, str]:
    """Reads are not commands."""
    return {"run_id": run_id}


@pytest.fixture
def app(app_factory: Callable[..., FastAPI]) -> FastAPI:
    return app_factory(extra_routers=[router])


@pytest.fixture
def client(app: FastAPI, client_factory: Callable[..., TestClient]) -> TestClient:
    return client_factory(app)


@pytest.fixture
def entries(app: FastAPI, audit_of: Callable[[FastAPI], InMemoryAuditSink]) -> list[AuditEntry]:
    return audit_of(app).entries


def test_accepted_command_is_recorded(
    client: TestClient,
    entries: list[AuditEntry],
    auth_factory: Callable[..., dict[str, str]],
) -> None:
    response = client.post(
        "/api/v1/runs/r1/halt",
        headers={
            **auth_factory("operator", sub="ops"),
            "Idempotency-Key": "k-1",
            "X-Request-ID": "req-123",
        },
    )
    assert response.status_code == 200
    [entry] = entries
    assert (entry.command, entry.target, entry.result, entry.status, entry.reason) == (
        "executions.halt",
        "r1",
        "accepted",
        200,
        None,
    )
    assert entry.principal.subject == "ops" and entry.principal.tenant_id == "acme"
    assert (entry.request_id, entry.idempotency_key) == ("req-123", "k-1")
    assert response.headers["x-request-id"] == "req-123"


@pytest.mark.parametrize(
    ("path", "role", "status", "reason"),
    [
        ("/api/v1/runs/r1/halt", "developer", 403, "forbidden"),
        ("/api/v1/runs/missing/halt", "operator", 404, "not-found"),
        ("/api/v1/runs/crash/halt", "operator", 500, "internal-error"),
    ],
)
def test_refused_commands_are_recorded(
    client: TestClient,
    entries: list[AuditEntry],
    auth_factory: Callable[..., dict[str, str]],
    path: str,
    role: str,
    status: int,
    reason: str,
) -> None:
    with capture_logs():
        response = client.post(path, headers=auth_factory(role))
    assert response.status_code == status
    [entry] = entries
    assert (entry.result, entry.status, entry.reason) == ("refused", status, reason)
    assert entry.command == "executions.halt"


def test_validation_refusals_are_recorded(
    client: TestClient,
    entries: list[AuditEntry],
    auth_factory: Callable[..., dict[str, str]],
) -> None:
    response = client.post("/api/v1/api-keys", json={"role": "nope"}, headers=auth_factory("admin"))
    assert response.status_code == 422
    [entry] = entries
    assert (entry.command, entry.result, entry.reason) == (
        "api_keys.create",
        "refused",
        "validation-error",
    )
    assert entry.target == "/api/v1/api-keys"


def test_rate_limited_commands_are_recorded(
    app_factory: Callable[..., FastAPI],
    services_factory: Callable[..., Any],
    gateway_settings_factory: Callable[..., OmiumSettings],
    client_factory: Callable[..., TestClient],
    auth_factory: Callable[..., dict[str, str]],
    audit_of: Callable[[FastAPI], InMemoryAuditSink],
) -> None:
    tier = {
        "tenant": {"capacity": 1, "refill_per_s": 0.01},
        "api_key": {"capacity": 1, "refill_per_s": 0.01},
    }
    settings = gateway_settings_factory(rate_limit={"tiers": {"standard": tier}})
    app = app_factory(
        settings=settings, services=services_factory(settings), extra_routers=[router]
    )
    client = client_factory(app)
    for _ in range(2):
        client.post("/api/v1/runs/r1/halt", headers=auth_factory("operator"))
    assert [(e.result, e.status) for e in audit_of(app).entries] == [
        ("accepted", 200),
        ("refused", 429),
    ]


def test_reads_and_unauthenticated_requests_are_not_recorded(
    client: TestClient,
    entries: list[AuditEntry],
    auth_factory: Callable[..., dict[str, str]],
) -> None:
    client.get("/api/v1/runs/r1", headers=auth_factory("viewer"))
    client.post("/api/v1/runs/r1/halt")
    assert entries == []


def test_a_failing_sink_does_not_change_the_response(
    app_factory: Callable[..., FastAPI],
    services_factory: Callable[..., Any],
    gateway_settings: OmiumSettings,
    client_factory: Callable[..., TestClient],
    auth_factory: Callable[..., dict[str, str]],
) -> None:
    class BrokenSink(InMemoryAuditSink):
        async def _write(self, entry: AuditEntry) -> None:
            raise OSError("kafka is down")

    app = app_factory(
        services=services_factory(gateway_settings, audit=BrokenSink()), extra_routers=[router]
    )
    client = client_factory(app)
    with capture_logs() as logs:
        response = client.post("/api/v1/runs/r1/halt", headers=auth_factory("operator"))
    assert response.status_code == 200
    assert any(log["event"] == "audit record failed" for log in logs)
    assert "omium_gateway_audit_failures_total 1.0" in client.get("/metrics").text


# --- the Kafka sink ---------------------------------------------------------------------------


def entry(target: str = "run-1", **overrides: Any) -> AuditEntry:
    principal = Principal("api-key:abc", "acme", frozenset({Role.DEVELOPER}), "api_key", "abc")
    values: dict[str, Any] = {
        "principal": principal,
        "command": "executions.start",
        "target": target,
        "result": "refused",
        "status": 409,
        "reason": "invalid-transition",
        "request_id": "req-1",
        "idempotency_key": "k",
        "source_ip": "10.0.0.1",
    }
    values.update(overrides)
    return AuditEntry(**values)


@pytest.fixture(scope="module")
def serde() -> AvroSerde:
    return AvroSerde(SchemaCatalog.from_directory(OmiumSettings().schemas_dir))


def test_command_recorded_event_is_valid_and_self_verifying(serde: AvroSerde) -> None:
    event = command_recorded(entry(), serde.catalog)
    assert serde.decode(serde.encode(event)) == event
    assert event["payload"] == audit_payload(entry())
    assert event["payload"]["actor_kind"] == "api_key"
    verify_chain([event], catalog=serde.catalog)


@pytest.mark.integration
def test_kafka_sink_publishes_command_recorded(serde: AvroSerde, live_kafka: OmiumSettings) -> None:
    kafka = live_kafka.kafka.model_copy(
        update={"topic_prefix": f"test-{uuid.uuid4().hex[:10]}", "partitions": 1}
    )
    ensure_topics(kafka)
    sink = KafkaAuditSink(EventProducer(kafka, serde), serde)
    target = f"run-{uuid.uuid4()}"
    asyncio.run(
        sink.record(
            entry().principal, "executions.halt", target, "accepted", 200, request_id="req-9"
        )
    )
    asyncio.run(sink.close())

    consumer = Consumer(consumer_config(kafka, f"audit-{uuid.uuid4()}"))
    consumer.subscribe([f"{kafka.topic_prefix}.audit"])
    try:
        messages = []
        for _ in range(30):
            messages += [m for m in consumer.consume(10, 1.0) if m.error() is None]
            if messages:
                break
    finally:
        consumer.close()
    [message] = messages
    assert message.key() == target.encode()
    value = message.value()
    assert value is not None
    event = serde.decode(value)
    assert event["event_type"] == "CommandRecorded" and event["tenant_id"] == "acme"
    assert event["payload"]["command"] == "executions.halt"
    assert event["payload"]["result"] == "accepted" and event["payload"]["status_code"] == 200
    assert event["correlation_id"] == "req-9"
