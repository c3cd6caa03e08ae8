"""Projections by name, and how a live one is wired from settings."""

from __future__ import annotations

from collections.abc import Callable

from omium.kernel.kafka import EventCodec, topic_name
from omium.kernel.settings import KafkaSettings, OmiumSettings
from omium.projections.base import EventSource, Projection, ProjectionRunner, UnknownProjectionError
from omium.projections.opensearch import OpenSearchProjection
from omium.projections.postgres import PostgresProjection, schema_for
from omium.projections.redis import RedisProjection
from omium.projections.timestream import TimestreamProjection

ProjectionFactory = Callable[[OmiumSettings], Projection]


def _postgres(settings: OmiumSettings) -> Projection:
    return PostgresProjection.open(
        settings.postgres.dsn(), schema=schema_for(settings.kafka.topic_prefix)
    )


def _redis(settings: OmiumSettings) -> Projection:
    return RedisProjection.open(settings.redis.url, topic_prefix=settings.kafka.topic_prefix)


def _opensearch(settings: OmiumSettings) -> Projection:
    return OpenSearchProjection.open(
        settings.opensearch.url, topic_prefix=settings.kafka.topic_prefix
    )


def _timestream(settings: OmiumSettings) -> Projection:
    return TimestreamProjection.open(settings.aws, topic_prefix=settings.kafka.topic_prefix)


FACTORIES: dict[str, ProjectionFactory] = {
    "postgres": _postgres,
    "redis": _redis,
    "opensearch": _opensearch,
    "timestream": _timestream,
}
"""Name → factory of every projection ``omium project`` can run."""


KINDS: dict[str, type[Projection]] = {
    "postgres": PostgresProjection,
    "redis": RedisProjection,
    "opensearch": OpenSearchProjection,
    "timestream": TimestreamProjection,
}
"""Name → class, for what is known without opening a store (areas, whether it keeps offsets)."""


def open_projection(name: str, settings: OmiumSettings) -> Projection:
    """Open the named projection's store (migrating it where it has a schema).

    Raises:
        UnknownProjectionError: No projection has that name.
    """
    factory = FACTORIES.get(name)
    if factory is None:
        raise UnknownProjectionError(name, sorted(FACTORIES))
    return factory(settings)


def group_id(kafka: KafkaSettings, name: str) -> str:
    """The consumer group of a projection: one per read model."""
    return f"{kafka.topic_prefix}.projection.{name}"


def topics_of(projection: Projection | type[Projection], kafka: KafkaSettings) -> list[str]:
    """The topics a projection reads."""
    return [topic_name(kafka, area) for area in projection.areas]


def live_runner(
    projection: Projection,
    kafka: KafkaSettings,
    codec: EventCodec,
    *,
    max_batch: int = 500,
    poll_timeout_s: float = 0.5,
) -> ProjectionRunner:
    """A runner on the projection's consumer group, resuming from the store's offsets."""
    stored = projection.stored_offsets if projection.keeps_offsets else None
    source = EventSource.live(
        kafka,
        codec,
        group_id=group_id(kafka, projection.name),
        topics=topics_of(projection, kafka),
        stored_offsets=stored,
    )
    return ProjectionRunner(projection, source, max_batch=max_batch, poll_timeout_s=poll_timeout_s)
