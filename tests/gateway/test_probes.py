"""Probes, metrics, OpenAPI, and the app on the real stack (lifespan builds real services)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from omium.gateway import create_app, default_readiness, run_checks
from omium.kernel.kafka import ensure_topics
from omium.kernel.settings import OmiumSettings


async def ok() -> None:
    return None


async def down() -> None:
    raise ConnectionRefusedError("postgresql://omium:hunter2@db:5432")


async def hang() -> None:
    await asyncio.sleep(30)


def test_health_needs_nothing(client_factory: Callable[..., TestClient]) -> None:
    response = client_factory().get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_ready_when_every_check_passes(
    app_factory: Callable[..., FastAPI],
    services_factory: Callable[..., Any],
    gateway_settings: OmiumSettings,
    client_factory: Callable[..., TestClient],
) -> None:
    services = services_factory(
        gateway_settings, readiness={"postgres": ok, "redis": ok, "kafka": ok}
    )
    response = client_factory(app_factory(services=services)).get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"postgres": "ok", "redis": "ok", "kafka": "ok"},
    }


def test_not_ready_names_what_failed(
    app_factory: Callable[..., FastAPI],
    services_factory: Callable[..., Any],
    gateway_settings_factory: Callable[..., OmiumSettings],
    client_factory: Callable[..., TestClient],
) -> None:
    settings = gateway_settings_factory(ready_timeout_s=0.2)
    services = services_factory(settings, readiness={"postgres": down, "redis": ok, "kafka": hang})
    response = client_factory(app_factory(settings=settings, services=services)).get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["type"].endswith("not-ready")
    assert body["checks"] == {
        "postgres": "unreachable (ConnectionRefusedError)",
        "redis": "ok",
        "kafka": "timeout",
    }
    assert "kafka" in body["detail"] and "postgres" in body["detail"]
    assert "hunter2" not in response.text


def test_default_checks_fail_fast_on_closed_ports(
    gateway_settings_factory: Callable[..., OmiumSettings],
    closed_port: int,
) -> None:
    base = gateway_settings_factory(ready_timeout_s=1.0)
    settings = base.model_copy(
        update={
            "postgres": base.postgres.model_copy(update={"port": closed_port}),
            "redis": base.redis.model_copy(update={"url": f"redis://127.0.0.1:{closed_port}/0"}),
            "kafka": base.kafka.model_copy(
                update={"bootstrap_servers": f"127.0.0.1:{closed_port}"}
            ),
        }
    )
    checks = asyncio.run(run_checks(default_readiness(settings), timeout_s=1.0))
    assert set(checks) == {"postgres", "redis", "kafka"}
    assert all(state != "ok" for state in checks.values()), checks


def test_metrics_are_open_by_default(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory()
    client.get("/health")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'omium_gateway_requests_total{method="GET",route="/health",status="200"}' in (
        response.text
    )


def test_metrics_token_when_configured(
    client_factory: Callable[..., TestClient],
    gateway_settings_factory: Callable[..., OmiumSettings],
) -> None:
    client = client_factory(settings=gateway_settings_factory(metrics_token="scrape-me"))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    good = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert good.status_code == 200


def test_metrics_never_label_tenants(
    client_factory: Callable[..., TestClient],
    auth_factory: Callable[..., dict[str, str]],
) -> None:
    client = client_factory()
    client.get("/api/v1/whoami", headers=auth_factory("viewer", tenant="secret-tenant"))
    client.get("/api/v1/no/such/path/secret-path")
    text = client.get("/metrics").text
    assert "secret-tenant" not in text and "secret-path" not in text
    assert 'route="unmatched"' in text


def test_openapi_documents_problem_responses(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory()
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert "Problem" in schema["components"]["schemas"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    create = schema["paths"]["/api/v1/api-keys"]["post"]["responses"]
    for status in ("400", "401", "403", "413", "415", "422", "429", "503"):
        assert list(create[status]["content"]) == ["application/problem+json"], status
    schemes = schema["components"]["securitySchemes"]
    assert {scheme["type"] for scheme in schemes.values()} == {"http", "apiKey"}


# --- the real stack ---------------------------------------------------------------------------


@pytest.mark.integration
def test_app_on_the_real_stack(
    live_postgres: OmiumSettings,
    live_redis: OmiumSettings,
    live_kafka: OmiumSettings,
    gateway_settings_factory: Callable[..., OmiumSettings],
    token_factory: Callable[..., str],
    tenant_factory: Callable[[], str],
) -> None:
    base = gateway_settings_factory()
    kafka = base.kafka.model_copy(
        update={"topic_prefix": f"test-{uuid.uuid4().hex[:10]}", "partitions": 1}
    )
    ensure_topics(kafka)
    settings = base.model_copy(update={"kafka": kafka})
    admin = {"Authorization": f"Bearer {token_factory(tenant=tenant_factory(), roles=['admin'])}"}
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"postgres": "ok", "redis": "ok", "kafka": "ok"}
        created = client.post(
            "/api/v1/api-keys", json={"name": "w", "role": "viewer"}, headers=admin
        )
        assert created.status_code == 201, created.text
        assert "ratelimit-remaining" in created.headers
        me = client.get("/api/v1/whoami", headers={"X-API-Key": created.json()["key"]})
        assert me.status_code == 200
