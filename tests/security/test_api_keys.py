"""Revoked API keys are refused: at once on the replica that revoked them, within
``gateway.api_key_cache_ttl_s`` (5 s by default) on every other replica."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from omium.kernel.settings import OmiumSettings
from tests.security.fixtures import API, Tenant

pytestmark = pytest.mark.integration


def whoami(client: TestClient, key: str) -> int:
    """The status of ``GET /whoami`` with an API key."""
    return client.get(f"{API}/whoami", headers={"X-API-Key": key}).status_code


def test_a_revoked_key_is_refused_at_once_here_and_within_the_ttl_elsewhere(
    tenant_factory: Callable[[], Tenant],
    app_factory: Callable[..., FastAPI],
    security_settings: OmiumSettings,
) -> None:
    tenant = tenant_factory()
    issued = tenant.ok(tenant.post("/api-keys", {"name": "worker", "role": "developer"}), 201)
    key, key_id = issued["key"], issued["key_id"]
    ttl = security_settings.gateway.api_key_cache_ttl_s
    with TestClient(app_factory(), raise_server_exceptions=False) as other_replica:
        assert whoami(tenant.client, key) == whoami(other_replica, key) == 200  # both cached

        revoked_at = time.monotonic()
        response = tenant.client.delete(f"{API}/api-keys/{key_id}", headers=tenant.headers())
        assert response.status_code == 204, response.text
        here = whoami(tenant.client, key)
        while whoami(other_replica, key) == 200:
            assert time.monotonic() - revoked_at <= ttl + 1, f"still accepted after {ttl} s"
            time.sleep(0.1)
        elsewhere_s = time.monotonic() - revoked_at

    assert here == 401
    assert elsewhere_s <= ttl + 1
    problem = tenant.client.get(f"{API}/whoami", headers={"X-API-Key": key}).json()
    assert problem["reason"] == "revoked"
    assert key not in str(problem)


def test_forged_and_malformed_keys_are_refused_alike(
    tenant_factory: Callable[[], Tenant],
) -> None:
    tenant = tenant_factory()
    issued = tenant.ok(tenant.post("/api-keys", {"name": "worker", "role": "viewer"}), 201)
    key = issued["key"]
    prefix, key_id, secret = key.split("_", 2)
    forged = [
        f"{prefix}_{key_id}_{'0' * len(secret)}",  # right id, wrong secret
        f"{prefix}_{'f' * len(key_id)}_{secret}",  # the secret moved to another id
        key[:-1],
        "omk_' OR '1'='1_x",
        "omk_*_*",
        "not-a-key",
        "omk_" + "a" * 4000,
    ]
    for value in forged:
        response = tenant.client.get(f"{API}/whoami", headers={"X-API-Key": value})
        assert response.status_code == 401, (value, response.text)
        assert secret not in response.text
    assert whoami(tenant.client, key) == 200


def test_another_tenants_key_cannot_be_listed_or_revoked(
    tenant_factory: Callable[[], Tenant],
) -> None:
    owner, stranger = tenant_factory(), tenant_factory()
    issued = owner.ok(owner.post("/api-keys", {"name": "worker", "role": "viewer"}), 201)

    listed = stranger.ok(stranger.get("/api-keys", role="admin"))
    revoke = stranger.client.delete(
        f"{API}/api-keys/{issued['key_id']}", headers=stranger.headers("admin")
    )

    assert listed == []
    assert revoke.status_code == 404
    assert whoami(owner.client, issued["key"]) == 200
