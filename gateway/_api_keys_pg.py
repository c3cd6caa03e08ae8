"""The PostgreSQL API key store: table ``api_keys``, created by a tiny migration at startup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Self

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from omium.gateway._api_keys import ApiKey
from omium.gateway._principal import Role
from omium.kernel.errors import PersistenceError

_ROLES = ", ".join(f"'{role.value}'" for role in Role)

MIGRATION = f"""
CREATE TABLE IF NOT EXISTS api_keys (
    key_id      text PRIMARY KEY,
    tenant_id   text NOT NULL,
    hash        text NOT NULL,
    role        text NOT NULL CHECK (role IN ({_ROLES})),
    name        text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_tenant_idx ON api_keys (tenant_id, created_at);
"""

# Two gateways starting together would race on CREATE TABLE IF NOT EXISTS (it is not atomic
# against the catalog); a transaction-scoped advisory lock serialises them.
_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('omium.gateway.api_keys'))"

_COLUMNS = "key_id, tenant_id, hash, role, name, created_by, created_at, revoked_at"


class ApiKeyStoreError(PersistenceError):
    """The API key table could not be read or written."""


class PostgresApiKeyStore:
    """API key records in PostgreSQL through an async connection pool."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, dsn: str, *, max_size: int = 10, timeout_s: float = 5.0) -> Self:
        """Open a pool on ``dsn`` (connections are made in the background)."""
        pool = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            timeout=timeout_s,
            open=False,
            kwargs={"connect_timeout": max(1, int(timeout_s))},
            # A dead pooled connection (PostgreSQL restarted) is replaced, not failed on.
            check=AsyncConnectionPool.check_connection,
        )
        await pool.open(wait=False)
        return cls(pool)

    async def migrate(self) -> None:
        """Create ``api_keys`` and its index when missing."""
        async with self._connection() as conn, conn.transaction():
            await conn.execute(_MIGRATION_LOCK)
            await conn.execute(MIGRATION)

    async def insert(self, key: ApiKey) -> None:
        """Store a new key."""
        async with self._connection() as conn:
            await conn.execute(
                f"INSERT INTO api_keys ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    key.key_id,
                    key.tenant_id,
                    key.key_hash,
                    key.role.value,
                    key.name,
                    key.created_by,
                    key.created_at,
                    key.revoked_at,
                ),
            )

    async def get(self, key_id: str) -> ApiKey | None:
        """The key with this id, or ``None``."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = %s", (key_id,)
            )
            row = await cursor.fetchone()
        return _record(row) if row else None

    async def list(self, tenant_id: str) -> list[ApiKey]:
        """The tenant's keys, oldest first."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE tenant_id = %s ORDER BY created_at, key_id",
                (tenant_id,),
            )
            rows = await cursor.fetchall()
        return [_record(row) for row in rows]

    async def revoke(self, tenant_id: str, key_id: str, at: datetime) -> ApiKey | None:
        """Mark the key revoked (an earlier revocation time is kept)."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, %s) "
                f"WHERE tenant_id = %s AND key_id = %s RETURNING {_COLUMNS}",
                (at, tenant_id, key_id),
            )
            row = await cursor.fetchone()
        return _record(row) if row else None

    async def close(self) -> None:
        """Close the pool."""
        await self._pool.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        try:
            async with self._pool.connection() as conn:
                conn.row_factory = dict_row  # type: ignore[assignment]
                yield conn  # type: ignore[misc]
        except (psycopg.Error, PoolTimeout) as exc:
            # Callers see an Omium error (503), never the DSN or driver text.
            raise ApiKeyStoreError(f"api_keys unavailable: {type(exc).__name__}") from exc


def _record(row: dict[str, Any]) -> ApiKey:
    return ApiKey(
        tenant_id=row["tenant_id"],
        key_id=row["key_id"],
        key_hash=row["hash"],
        role=Role(row["role"]),
        name=row["name"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )
