"""Fixtures for projection tests: a fresh topic prefix (and so fresh stores) per test."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import redis

from omium.kernel.kafka import admin_client, ensure_topics, topic_specs
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import KafkaSettings, OmiumSettings
from omium.projections import live_runner
from omium.projections.base import Projection, ProjectionRunner
from omium.projections.opensearch import READ_MODELS, OpenSearchClient, OpenSearchProjection
from omium.projections.postgres import PostgresProjection, schema_for
from omium.projections.redis import RedisProjection
from omium.projections.timestream import TimestreamProjection, timestream_client


@pytest.fixture(scope="session")
def serde(settings: OmiumSettings) -> AvroSerde:
    """The serde over every schema version in schemas/avro."""
    return AvroSerde(SchemaCatalog.from_directory(settings.schemas_dir))


@pytest.fixture
def kafka_factory(
    settings: OmiumSettings, stack: OmiumSettings
) -> Iterator[Callable[..., KafkaSettings]]:
    """Builds Kafka settings with a unique topic prefix and its topics; deletes them after."""
    made: list[KafkaSettings] = []

    def build(**overrides: Any) -> KafkaSettings:
        values = {"topic_prefix": f"pt{uuid.uuid4().hex[:10]}", "partitions": 2, **overrides}
        kafka = settings.kafka.model_copy(update=values)
        ensure_topics(kafka)
        made.append(kafka)
        return kafka

    yield build
    for kafka in made:
        names = [spec.name for spec in topic_specs(kafka)]
        admin_client(kafka).delete_topics(names, operation_timeout=10)


@pytest.fixture
def kafka(kafka_factory: Callable[..., KafkaSettings]) -> KafkaSettings:
    """Kafka settings of this test (unique prefix)."""
    return kafka_factory()


@pytest.fixture
def pg_projection_factory(settings: OmiumSettings) -> Iterator[Callable[..., PostgresProjection]]:
    """Opens PostgreSQL projections on a prefix's schema; drops the schemas afterwards."""
    opened: list[PostgresProjection] = []

    def build(kafka: KafkaSettings, *, schema: str | None = None) -> PostgresProjection:
        projection = PostgresProjection.open(
            settings.postgres.dsn(), schema=schema or schema_for(kafka.topic_prefix)
        )
        opened.append(projection)
        return projection

    yield build
    schemas = {p.schema for p in opened}
    for projection in opened:
        projection.close()
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def redis_projection_factory(settings: OmiumSettings) -> Iterator[Callable[..., RedisProjection]]:
    """Opens Redis projections for a prefix; deletes the prefix's keys afterwards."""
    opened: list[RedisProjection] = []

    def build(kafka: KafkaSettings) -> RedisProjection:
        projection = RedisProjection.open(settings.redis.url, topic_prefix=kafka.topic_prefix)
        opened.append(projection)
        return projection

    yield build
    client = redis.Redis.from_url(settings.redis.url)
    for projection in opened:
        for key in client.scan_iter(match=f"{projection.keys.prefix}:*", count=1000):
            client.delete(key)
        projection.close()
    client.close()


@pytest.fixture
def opensearch_projection_factory(
    settings: OmiumSettings,
) -> Iterator[Callable[..., OpenSearchProjection]]:
    """Opens OpenSearch projections for a prefix; deletes its indices and templates after."""
    opened: list[OpenSearchProjection] = []

    def build(kafka: KafkaSettings) -> OpenSearchProjection:
        projection = OpenSearchProjection.open(
            settings.opensearch.url, topic_prefix=kafka.topic_prefix
        )
        opened.append(projection)
        return projection

    yield build
    cleaner = OpenSearchClient(settings.opensearch.url)
    for projection in opened:
        prefix = projection.targets["spans"].rsplit("-", 1)[0]
        cleaner.delete_index(f"{prefix}-*")
        for model in READ_MODELS:
            cleaner.request("DELETE", f"/_index_template/{prefix}-{model}", ok=(200, 404))
        projection.close()
    cleaner.close()


@pytest.fixture
def timestream_projection_factory(
    settings: OmiumSettings,
) -> Iterator[Callable[..., TimestreamProjection]]:
    """Opens Timestream projections (on the emulator) for a prefix; drops their tables after."""
    opened: list[TimestreamProjection] = []

    def build(kafka: KafkaSettings, *, client: Any = None) -> TimestreamProjection:
        if client is None:
            projection = TimestreamProjection.open(settings.aws, topic_prefix=kafka.topic_prefix)
        else:
            projection = TimestreamProjection(
                client,
                database=settings.aws.timestream_database,
                table=f"{kafka.topic_prefix}-metrics",
            )
            projection.install()
        opened.append(projection)
        return projection

    yield build
    client = timestream_client(settings.aws)
    for projection in opened:
        with contextlib.suppress(Exception):
            client.delete_table(DatabaseName=projection.database, TableName=projection.table)


@pytest.fixture
def runner_factory(serde: AvroSerde) -> Iterator[Callable[..., ProjectionRunner]]:
    """Builds live runners for projections; closes their sources afterwards."""
    runners: list[ProjectionRunner] = []

    def build(projection: Projection, kafka: KafkaSettings, **kwargs: Any) -> ProjectionRunner:
        runner = live_runner(projection, kafka, serde, poll_timeout_s=0.3, **kwargs)
        runners.append(runner)
        return runner

    yield build
    for runner in runners:
        runner.source.close()


@pytest.fixture
def pg(settings: OmiumSettings) -> Iterator[psycopg.Connection]:
    """An autocommit connection for assertions."""
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        yield conn
