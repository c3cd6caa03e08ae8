"""Fixtures for the kernel's Kafka tests: a fresh topic prefix per test, on the real broker."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from omium.kernel.kafka import ensure_topics
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import KafkaSettings, OmiumSettings


@pytest.fixture(scope="session")
def serde(settings: OmiumSettings) -> AvroSerde:
    """The serde over every schema version in schemas/avro."""
    return AvroSerde(SchemaCatalog.from_directory(settings.schemas_dir))


@pytest.fixture
def kafka_settings_factory(settings: OmiumSettings, stack: object) -> Callable[..., KafkaSettings]:
    """Builds Kafka settings with a unique topic prefix, so tests never see each other's data."""

    def build(*, create_topics: bool = True, **overrides: object) -> KafkaSettings:
        values = {"topic_prefix": f"test-{uuid.uuid4().hex[:10]}", "partitions": 3, **overrides}
        kafka = settings.kafka.model_copy(update=values)
        if create_topics:
            ensure_topics(kafka)
        return kafka

    return build
