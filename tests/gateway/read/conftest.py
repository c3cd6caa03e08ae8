"""Fixtures for the read routes: a read model on its own schema, filled by the real projection.

Events are applied straight to the PostgreSQL projection (the projection tests cover the path
through Kafka); the app reads the same schema through its ``ReadStores``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
import redis
from fastapi import FastAPI

from omium.kernel.kafka import ConsumedEvent
from omium.kernel.settings import OmiumSettings
from omium.projections import ReadStores
from omium.projections.opensearch import READ_MODELS, OpenSearchProjection
from omium.projections.postgres import PostgresProjection, schema_for
from omium.projections.redis import RedisProjection


class ReadModel:
    """A PostgreSQL read model of one test, and the settings that point at it."""

    def __init__(self, settings: OmiumSettings, projection: PostgresProjection) -> None:
        self.settings = settings
        self.projection = projection

    def project(self, events: Iterable[dict[str, Any]]) -> None:
        """Apply events as the live projection would, and flush them."""
        for offset, event in enumerate(events):
            self.projection.apply(
                ConsumedEvent(
                    topic="direct", partition=0, offset=offset, key=None, event=event, raw=b""
                )
            )
        self.projection.flush({}, expected={})


@pytest.fixture
def read_model(
    gateway_settings: OmiumSettings, live_postgres: OmiumSettings
) -> Iterator[ReadModel]:
    """A migrated, empty read model on a schema of its own."""
    prefix = f"rt{uuid.uuid4().hex[:10]}"
    kafka = gateway_settings.kafka.model_copy(update={"topic_prefix": prefix})
    settings = gateway_settings.model_copy(update={"kafka": kafka})
    projection = PostgresProjection.open(settings.postgres.dsn(), schema=schema_for(prefix))
    yield ReadModel(settings, projection)
    projection.close()
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema_for(prefix)} CASCADE")


@pytest.fixture
async def read_client_factory(
    read_model: ReadModel,
    app_factory: Callable[..., FastAPI],
    async_client_factory: Callable[[FastAPI], httpx.AsyncClient],
) -> AsyncIterator[Callable[[], httpx.AsyncClient]]:
    """Builds clients of an app whose read routes read ``read_model``."""
    apps: list[FastAPI] = []
    clients: list[httpx.AsyncClient] = []

    def build() -> httpx.AsyncClient:
        app = app_factory(read_model.settings)
        app.state.read_stores = ReadStores(read_model.settings)
        apps.append(app)
        clients.append(client := async_client_factory(app))
        return client

    yield build
    for client in clients:
        await client.aclose()
    for app in apps:
        await app.state.read_stores.aclose()


@pytest.fixture
def live_model(read_model: ReadModel, live_redis: OmiumSettings) -> Iterator[LiveModel]:
    """The Redis read model of ``read_model``'s prefix; its keys are deleted afterwards."""
    projection = RedisProjection.open(
        read_model.settings.redis.url, topic_prefix=read_model.settings.kafka.topic_prefix
    )
    yield LiveModel(projection, read_model.settings.redis.url)
    client = redis.Redis.from_url(read_model.settings.redis.url)
    for key in client.scan_iter(match=f"{projection.keys.prefix}:*", count=1000):
        client.delete(key)
    client.close()
    projection.close()


class LiveModel:
    """A Redis read model of one test."""

    def __init__(self, projection: RedisProjection, redis_url: str) -> None:
        self.projection = projection
        self.redis_url = redis_url

    def project(self, events: Iterable[dict[str, Any]]) -> None:
        """Apply events as the live projection would, and flush them."""
        for offset, event in enumerate(events):
            self.projection.apply(
                ConsumedEvent(
                    topic="direct", partition=0, offset=offset, key=None, event=event, raw=b""
                )
            )
        self.projection.flush({}, expected={})


class SearchModel:
    """An OpenSearch read model of one test."""

    def __init__(self, projection: OpenSearchProjection) -> None:
        self.projection = projection

    def project(self, events: Iterable[dict[str, Any]]) -> None:
        """Apply events as the live projection would, flush, and make them searchable."""
        for offset, event in enumerate(events):
            self.projection.apply(
                ConsumedEvent(
                    topic="direct", partition=0, offset=offset, key=None, event=event, raw=b""
                )
            )
        result = self.projection.flush({}, expected={})
        assert not result.rejected, result.rejected
        for target in self.projection.targets.values():
            self.projection.client.refresh(target)


@pytest.fixture
def search_model(read_model: ReadModel) -> Iterator[SearchModel]:
    """The OpenSearch read model of ``read_model``'s prefix; its indices are deleted after."""
    prefix = read_model.settings.kafka.topic_prefix
    projection = OpenSearchProjection.open(read_model.settings.opensearch.url, topic_prefix=prefix)
    yield SearchModel(projection)
    projection.client.delete_index(f"{prefix}-*")
    for model in READ_MODELS:
        projection.client.request("DELETE", f"/_index_template/{prefix}-{model}", ok=(200, 404))
    projection.close()
