"""API keys for agents and workers: ``omk_<key_id>_<secret>``; only a SHA-256 hash is stored.

The secret has 256 bits of entropy, so a plain (unsalted) SHA-256 is enough: nothing to brute
force, and the lookup stays a single indexed read by ``key_id``. The hash covers the whole key,
so a secret cannot be moved to another key id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from omium.gateway._principal import Principal, Role
from omium.gateway.errors import ApiKeyNotFoundError, AuthenticationError, PermissionDeniedError

API_KEY_PREFIX = "omk"
_KEY_ID_BYTES = 8
_SECRET_BYTES = 32


@dataclass(frozen=True)
class ApiKey:
    """A stored API key (never the secret itself).

    Attributes:
        tenant_id: The tenant the key acts for.
        key_id: Public id, part of the key; used in logs, audit and rate limits.
        key_hash: Hex SHA-256 of the whole plaintext key.
        role: The single role the key holds.
        name: What the key is for (``"worker-eu-1"``).
        created_by: Subject of the admin who created it.
        created_at: When it was created.
        revoked_at: When it was revoked, or ``None`` while it is valid.
    """

    tenant_id: str
    key_id: str
    key_hash: str
    role: Role
    name: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class IssuedApiKey:
    """A key just created: the stored record and the plaintext, which is shown only once."""

    record: ApiKey
    plaintext: str


def generate_api_key() -> tuple[str, str]:
    """A new ``(key_id, plaintext)``; the key id is hex so the ``_`` separator stays unique."""
    key_id = secrets.token_hex(_KEY_ID_BYTES)
    return key_id, f"{API_KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"


def hash_api_key(plaintext: str) -> str:
    """Hex SHA-256 of a plaintext key."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def parse_key_id(plaintext: str) -> str:
    """The key id inside a plaintext key.

    Raises:
        AuthenticationError: The value does not have the ``omk_<id>_<secret>`` shape.
    """
    prefix, _, rest = plaintext.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != API_KEY_PREFIX or not key_id or not secret:
        raise AuthenticationError("API key is malformed", reason="invalid_api_key")
    return key_id


_CACHE_MAX = 10_000


class ApiKeyStore(Protocol):
    """Where API key records live (PostgreSQL in production, memory in unit tests)."""

    async def migrate(self) -> None:
        """Create the storage if it does not exist yet (idempotent)."""
        ...

    async def insert(self, key: ApiKey) -> None:
        """Store a new key."""
        ...

    async def get(self, key_id: str) -> ApiKey | None:
        """The key with this id in any tenant, or ``None``."""
        ...

    async def list(self, tenant_id: str) -> list[ApiKey]:
        """The tenant's keys, oldest first, revoked ones included."""
        ...

    async def revoke(self, tenant_id: str, key_id: str, at: datetime) -> ApiKey | None:
        """Mark the tenant's key revoked (an earlier revocation time stays); ``None`` if absent."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class ApiKeys:
    """Creating, checking, listing and revoking API keys on top of a store.

    Checked keys are remembered for ``cache_ttl_s`` seconds, so an agent's stream of commands
    does not read the store on every request. A revocation through this gateway takes effect
    at once; one made through another replica is honoured within ``cache_ttl_s``.
    """

    def __init__(self, store: ApiKeyStore, *, cache_ttl_s: float = 5.0) -> None:
        self._store = store
        self._cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}

    @property
    def store(self) -> ApiKeyStore:
        """The underlying store."""
        return self._store

    async def create(self, creator: Principal, *, name: str, role: Role) -> IssuedApiKey:
        """Create a key in the creator's tenant, holding at most the creator's role.

        Raises:
            PermissionDeniedError: ``role`` is above the creator's own role.
        """
        if not creator.has(role):
            actual = creator.role.value if creator.role else None
            raise PermissionDeniedError(required_role=role.value, actual_role=actual)
        key_id, plaintext = generate_api_key()
        record = ApiKey(
            tenant_id=creator.tenant_id,
            key_id=key_id,
            key_hash=hash_api_key(plaintext),
            role=role,
            name=name,
            created_by=creator.subject,
            created_at=datetime.now(UTC),
        )
        await self._store.insert(record)
        return IssuedApiKey(record=record, plaintext=plaintext)

    async def authenticate(self, plaintext: str) -> Principal:
        """The principal of a presented key.

        Raises:
            AuthenticationError: Unknown, malformed, wrong secret, or revoked.
        """
        record = await self._record(parse_key_id(plaintext))
        # Compare even when the id is unknown, so timing does not tell which ids exist.
        expected = record.key_hash if record else hash_api_key("")
        if not hmac.compare_digest(expected, hash_api_key(plaintext)) or record is None:
            raise AuthenticationError("API key is not valid", reason="invalid_api_key")
        if record.revoked_at is not None:
            raise AuthenticationError("API key has been revoked", reason="revoked")
        return Principal(
            subject=f"api-key:{record.key_id}",
            tenant_id=record.tenant_id,
            roles=frozenset({record.role}),
            method="api_key",
            key_id=record.key_id,
        )

    async def _record(self, key_id: str) -> ApiKey | None:
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and now - cached[0] < self._cache_ttl_s:
            return cached[1]
        record = await self._store.get(key_id)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()  # bounded: unknown ids must not grow it without end
        self._cache[key_id] = (now, record)
        return record

    async def list(self, tenant_id: str) -> list[ApiKey]:
        """The tenant's keys, revoked ones included."""
        return await self._store.list(tenant_id)

    async def revoke(self, tenant_id: str, key_id: str) -> ApiKey:
        """Revoke one of the tenant's keys (revoking twice is harmless).

        Raises:
            ApiKeyNotFoundError: The tenant has no key with this id (another tenant's key
                included).
        """
        record = await self._store.revoke(tenant_id, key_id, datetime.now(UTC))
        self._cache.pop(key_id, None)
        if record is None:
            raise ApiKeyNotFoundError(key_id)
        return record


class InMemoryApiKeyStore:
    """A process-local store for unit tests and single-process development."""

    def __init__(self) -> None:
        self._keys: dict[str, ApiKey] = {}

    async def migrate(self) -> None:
        """Nothing to create."""

    async def insert(self, key: ApiKey) -> None:
        """Store a new key."""
        self._keys[key.key_id] = key

    async def get(self, key_id: str) -> ApiKey | None:
        """The key with this id, or ``None``."""
        return self._keys.get(key_id)

    async def list(self, tenant_id: str) -> list[ApiKey]:
        """The tenant's keys, oldest first."""
        keys = [key for key in self._keys.values() if key.tenant_id == tenant_id]
        return sorted(keys, key=lambda key: (key.created_at, key.key_id))

    async def revoke(self, tenant_id: str, key_id: str, at: datetime) -> ApiKey | None:
        """Mark the key revoked; ``None`` when the tenant has no such key."""
        key = self._keys.get(key_id)
        if key is None or key.tenant_id != tenant_id:
            return None
        if key.revoked_at is None:
            key = self._keys[key_id] = replace(key, revoked_at=at)
        return key

    async def close(self) -> None:
        """Nothing to release."""
