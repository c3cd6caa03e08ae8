"""Async handles on the read models for the gateway: PostgreSQL pool, Redis, OpenSearch.

Opened lazily on first use, on the event loop that uses them, and closed by ``aclose``.
"""

from __future__ import annotations

import asyncio

import httpx
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from omium.kernel.settings import OmiumSettings
from omium.projections.opensearch import SearchQueries
from omium.projections.postgres import schema_for
from omium.projections.postgres._queries import ReadModelQueries


class ReadStores:
    """Where the gateway reads the read models of one deployment (one topic prefix).

    Args:
        settings: Addresses of the stores; ``kafka.topic_prefix`` names the read models.
        pool_size: Most PostgreSQL connections.
    """

    def __init__(self, settings: OmiumSettings, *, pool_size: int = 8) -> None:
        self.settings = settings
        self.prefix = settings.kafka.topic_prefix
        self.schema = schema_for(self.prefix)
        self.queries = ReadModelQueries(self.schema)
        self.search = SearchQueries(self.prefix)
        self._pool_size = pool_size
        self._pool: AsyncConnectionPool | None = None
        self._redis: aioredis.Redis | None = None
        self._opensearch: httpx.AsyncClient | None = None
        self._lock = asyncio.Lock()

    async def pool(self) -> AsyncConnectionPool:
        """The PostgreSQL pool (autocommit, no prepared statements: see ``postgres.connect``)."""
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    pool = AsyncConnectionPool(
                        self.settings.postgres.dsn(),
                        min_size=1,
                        max_size=self._pool_size,
                        kwargs={"autocommit": True, "prepare_threshold": None},
                        # One round trip per checkout: after PostgreSQL restarts, every pooled
                        # connection is dead, and without the check each would fail a request
                        # (503) before the pool dropped it.
                        check=AsyncConnectionPool.check_connection,
                        open=False,
                    )
                    await pool.open()
                    self._pool = pool
        return self._pool

    def redis(self) -> aioredis.Redis:
        """The Redis client (connections are made on first command)."""
        if self._redis is None:
            # Subscriptions block in XREAD for up to 15 s: the socket timeout must be longer.
            self._redis = aioredis.from_url(
                self.settings.redis.url,
                decode_responses=True,
                socket_timeout=30,
                socket_connect_timeout=5,
                max_connections=self.settings.redis.max_connections,
            )
        return self._redis

    def opensearch(self) -> httpx.AsyncClient:
        """An HTTP client on the OpenSearch cluster."""
        if self._opensearch is None:
            self._opensearch = httpx.AsyncClient(
                base_url=self.settings.opensearch.url, timeout=10.0
            )
        return self._opensearch

    async def aclose(self) -> None:
        """Close whatever was opened."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        if self._opensearch is not None:
            await self._opensearch.aclose()
            self._opensearch = None
