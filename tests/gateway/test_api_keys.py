"""API keys: the store contract (memory and PostgreSQL), and create/use/list/revoke over HTTP."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from omium.gateway import (
    ApiKey,
    ApiKeys,
    ApiKeyStore,
    InMemoryApiKeyStore,
    PostgresApiKeyStore,
    Principal,
    Role,
    generate_api_key,
    hash_api_key,
)
from omium.gateway.errors import AuthenticationError, PermissionDeniedError
from omium.kernel.settings import OmiumSettings

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def record(tenant: str, *, role: Role = Role.DEVELOPER, at: datetime = NOW) -> ApiKey:
    key_id, plaintext = generate_api_key()
    return ApiKey(
        tenant_id=tenant,
        key_id=key_id,
        key_hash=hash_api_key(plaintext),
        role=role,
        name=f"key-{key_id}",
        created_by="root",
        created_at=at,
    )


class ApiKeyStoreContract:
    """What every API key store does; subclasses provide the ``store`` fixture."""

    async def test_insert_then_get(
        self, store: ApiKeyStore, tenant_factory: Callable[[], str]
    ) -> None:
        key = record(tenant_factory(), role=Role.OPERATOR)
        await store.insert(key)
        assert await store.get(key.key_id) == key
        assert await store.get("0000000000000000") is None

    async def test_list_is_per_tenant_oldest_first(
        self, store: ApiKeyStore, tenant_factory: Callable[[], str]
    ) -> None:
        tenant, other = tenant_factory(), tenant_factory()
        newer = record(tenant, at=NOW + timedelta(seconds=5))
        older = record(tenant)
        for key in (newer, older, record(other)):
            await store.insert(key)
        assert [key.key_id for key in await store.list(tenant)] == [older.key_id, newer.key_id]

    async def test_revoke_keeps_the_first_revocation(
        self, store: ApiKeyStore, tenant_factory: Callable[[], str]
    ) -> None:
        key = record(tenant_factory())
        await store.insert(key)
        first = await store.revoke(key.tenant_id, key.key_id, NOW + timedelta(minutes=1))
        again = await store.revoke(key.tenant_id, key.key_id, NOW + timedelta(minutes=2))
        assert first is not None and again is not None
        assert first.revoked_at == again.revoked_at == NOW + timedelta(minutes=1)
        stored = await store.get(key.key_id)
        assert stored is not None and stored.revoked_at == first.revoked_at

    async def test_revoke_in_another_tenant_finds_nothing(
        self, store: ApiKeyStore, tenant_factory: Callable[[], str]
    ) -> None:
        key = record(tenant_factory())
        await store.insert(key)
        assert await store.revoke(tenant_factory(), key.key_id, NOW) is None
        stored = await store.get(key.key_id)
        assert stored is not None and stored.revoked_at is None

    async def test_migrate_is_idempotent(self, store: ApiKeyStore) -> None:
        await store.migrate()
        await store.migrate()


class TestInMemoryApiKeyStore(ApiKeyStoreContract):
    @pytest.fixture
    def store(self) -> ApiKeyStore:
        return InMemoryApiKeyStore()


@pytest.mark.integration
class TestPostgresApiKeyStore(ApiKeyStoreContract):
    @pytest.fixture
    async def store(
        self, postgres_store_factory: Callable[[], Awaitable[PostgresApiKeyStore]]
    ) -> ApiKeyStore:
        return await postgres_store_factory()

    async def test_only_the_hash_is_stored(
        self, store: ApiKeyStore, tenant_factory: Callable[[], str], live_postgres: OmiumSettings
    ) -> None:
        admin = Principal("root", tenant_factory(), frozenset({Role.ADMIN}), "jwt")
        issued = await ApiKeys(store).create(admin, name="w", role=Role.VIEWER)
        async with await psycopg.AsyncConnection.connect(live_postgres.postgres.dsn()) as conn:
            cursor = await conn.execute(
                "SELECT * FROM api_keys WHERE key_id = %s", (issued.record.key_id,)
            )
            row = await cursor.fetchone()
        assert row is not None
        secret = issued.plaintext.split("_", 2)[2]
        assert all(secret not in str(value) for value in row)
        assert hashlib.sha256(issued.plaintext.encode()).hexdigest() in row


# --- the service ------------------------------------------------------------------------------


async def test_keys_authenticate_until_revoked(tenant_factory: Callable[[], str]) -> None:
    keys = ApiKeys(InMemoryApiKeyStore())
    admin = Principal("root", tenant_factory(), frozenset({Role.ADMIN}), "jwt")
    issued = await keys.create(admin, name="worker", role=Role.DEVELOPER)
    principal = await keys.authenticate(issued.plaintext)
    assert principal == Principal(
        f"api-key:{issued.record.key_id}",
        admin.tenant_id,
        frozenset({Role.DEVELOPER}),
        "api_key",
        issued.record.key_id,
    )
    await keys.revoke(admin.tenant_id, issued.record.key_id)
    with pytest.raises(AuthenticationError) as caught:
        await keys.authenticate(issued.plaintext)
    assert caught.value.reason == "revoked"


async def test_checked_keys_are_cached_and_a_revocation_elsewhere_counts_within_the_ttl(
    tenant_factory: Callable[[], str],
) -> None:
    store = InMemoryApiKeyStore()
    here, replica = ApiKeys(store, cache_ttl_s=0.3), ApiKeys(store, cache_ttl_s=0.3)
    admin = Principal("root", tenant_factory(), frozenset({Role.ADMIN}), "jwt")
    issued = await here.create(admin, name="worker", role=Role.DEVELOPER)
    await here.authenticate(issued.plaintext)
    await replica.authenticate(issued.plaintext)

    await here.revoke(admin.tenant_id, issued.record.key_id)
    with pytest.raises(AuthenticationError):  # revoked here: refused at once
        await here.authenticate(issued.plaintext)
    assert (await replica.authenticate(issued.plaintext)).key_id == issued.record.key_id
    await asyncio.sleep(0.35)
    with pytest.raises(AuthenticationError) as caught:  # the replica's copy expired
        await replica.authenticate(issued.plaintext)
    assert caught.value.reason == "revoked"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"),  # wrong secret, right id
        lambda key: "omk_ffffffffffffffff_" + key.split("_", 2)[2],  # unknown id
        lambda key: key.replace("omk_", "xyz_"),  # wrong prefix
        lambda key: "omk_",  # no id, no secret
        lambda key: "",
    ],
)
async def test_bad_keys_are_invalid(
    tenant_factory: Callable[[], str], mangle: Callable[[str], str]
) -> None:
    keys = ApiKeys(InMemoryApiKeyStore())
    admin = Principal("root", tenant_factory(), frozenset({Role.ADMIN}), "jwt")
    issued = await keys.create(admin, name="worker", role=Role.VIEWER)
    with pytest.raises(AuthenticationError) as caught:
        await keys.authenticate(mangle(issued.plaintext))
    assert caught.value.reason == "invalid_api_key"


async def test_a_key_never_holds_more_than_its_creator() -> None:
    operator = Principal("op", "acme", frozenset({Role.OPERATOR}), "jwt")
    with pytest.raises(PermissionDeniedError):
        await ApiKeys(InMemoryApiKeyStore()).create(operator, name="x", role=Role.ADMIN)


def test_generated_keys_are_unique_and_well_formed() -> None:
    keys = {generate_api_key() for _ in range(200)}
    assert len({plaintext for _, plaintext in keys}) == 200
    for key_id, plaintext in keys:
        prefix, kid, secret = plaintext.split("_", 2)
        assert (prefix, kid) == ("omk", key_id) and len(key_id) == 16 and len(secret) >= 43


# --- over HTTP --------------------------------------------------------------------------------


def test_create_use_list_revoke_over_http(
    client_factory: Callable[..., TestClient],
    auth_factory: Callable[..., dict[str, str]],
) -> None:
    client = client_factory()
    admin = auth_factory("admin", tenant="acme", sub="root")
    created = client.post(
        "/api/v1/api-keys", json={"name": "worker-1", "role": "developer"}, headers=admin
    )
    assert created.status_code == 201
    body = created.json()
    assert body["tenant_id"] == "acme" and body["created_by"] == "root"
    assert body["key"].startswith(f"omk_{body['key_id']}_")

    me = client.get("/api/v1/whoami", headers={"X-API-Key": body["key"]})
    assert me.json()["method"] == "api_key" and me.json()["role"] == "developer"

    listed = client.get("/api/v1/api-keys", headers=admin).json()
    assert [item["key_id"] for item in listed] == [body["key_id"]]
    assert "key" not in listed[0]

    assert client.delete(f"/api/v1/api-keys/{body['key_id']}", headers=admin).status_code == 204
    revoked = client.get("/api/v1/whoami", headers={"X-API-Key": body["key"]})
    assert revoked.status_code == 401 and revoked.json()["reason"] == "revoked"
    assert client.get("/api/v1/api-keys", headers=admin).json()[0]["revoked_at"] is not None


def test_keys_are_tenant_scoped_over_http(
    client_factory: Callable[..., TestClient],
    auth_factory: Callable[..., dict[str, str]],
) -> None:
    client = client_factory()
    acme, globex = auth_factory("admin", tenant="acme"), auth_factory("admin", tenant="globex")
    key_id = client.post(
        "/api/v1/api-keys", json={"name": "a", "role": "viewer"}, headers=acme
    ).json()["key_id"]
    assert client.get("/api/v1/api-keys", headers=globex).json() == []
    response = client.delete(f"/api/v1/api-keys/{key_id}", headers=globex)
    assert response.status_code == 404 and response.json()["key_id"] == key_id


def test_api_key_callers_cannot_manage_keys_above_their_role(
    client_factory: Callable[..., TestClient],
    auth_factory: Callable[..., dict[str, str]],
) -> None:
    client = client_factory()
    key = client.post(
        "/api/v1/api-keys", json={"name": "op", "role": "operator"}, headers=auth_factory("admin")
    ).json()["key"]
    response = client.post(
        "/api/v1/api-keys", json={"name": "x", "role": "viewer"}, headers={"X-API-Key": key}
    )
    assert response.status_code == 403


async def test_store_down_is_503_without_internals(
    app_factory: Callable[..., FastAPI],
    services_factory: Callable[..., Any],
    gateway_settings: OmiumSettings,
    async_client_factory: Callable[[FastAPI], httpx.AsyncClient],
    closed_port: int,
) -> None:
    dsn = f"postgresql://omium:hunter2@127.0.0.1:{closed_port}/omium"
    store = await PostgresApiKeyStore.connect(dsn, timeout_s=1.0)
    try:
        app = app_factory(services=services_factory(gateway_settings, api_keys=ApiKeys(store)))
        async with async_client_factory(app) as client:
            response = await client.get(
                "/api/v1/whoami", headers={"X-API-Key": generate_api_key()[1]}
            )
    finally:
        await store.close()
    assert response.status_code == 503
    assert response.json()["type"].endswith("store-unavailable")
    assert "hunter2" not in response.text and str(closed_port) not in response.text


@pytest.mark.integration
async def test_create_use_revoke_against_postgres(
    app_factory: Callable[..., FastAPI],
    services_factory: Callable[..., Any],
    gateway_settings: OmiumSettings,
    async_client_factory: Callable[[FastAPI], httpx.AsyncClient],
    postgres_store_factory: Callable[[], Awaitable[PostgresApiKeyStore]],
    token_factory: Callable[..., str],
    tenant_factory: Callable[[], str],
) -> None:
    store = await postgres_store_factory()
    app = app_factory(services=services_factory(gateway_settings, api_keys=ApiKeys(store)))
    tenant = tenant_factory()
    admin = {"Authorization": f"Bearer {token_factory(tenant=tenant, roles=['admin'])}"}
    async with async_client_factory(app) as client:
        created = await client.post(
            "/api/v1/api-keys", headers=admin, json={"name": "worker", "role": "developer"}
        )
        assert created.status_code == 201, created.text
        key, key_id = created.json()["key"], created.json()["key_id"]
        me = await client.get("/api/v1/whoami", headers={"X-API-Key": key})
        assert me.status_code == 200 and me.json()["tenant_id"] == tenant
        listed = await client.get("/api/v1/api-keys", headers=admin)
        assert [item["key_id"] for item in listed.json()] == [key_id]
        revoked = await client.delete(f"/api/v1/api-keys/{key_id}", headers=admin)
        assert revoked.status_code == 204
        after = await client.get("/api/v1/whoami", headers={"X-API-Key": key})
    assert after.status_code == 401 and after.json()["reason"] == "revoked"
