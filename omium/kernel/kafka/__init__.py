"""Kafka plumbing shared by every Omium part: topics, producer, consumer, dead letters."""

from omium.kernel.kafka._codec import EventCodec
from omium.kernel.kafka._consumer import (
    METADATA_REFRESH_MS,
    ConsumedEvent,
    EventConsumer,
    EventHandler,
    consumer_config,
    poll_batch,
)
from omium.kernel.kafka._deadline import DeadlineCalls, TransactionStalledError
from omium.kernel.kafka._dlq import DeadLetter, DeadLetterWriter
from omium.kernel.kafka._producer import (
    DeliveryCallback,
    DeliveryError,
    EventProducer,
    producer_config,
)
from omium.kernel.kafka._topics import (
    TELEMETRY_AREAS,
    Area,
    TopicDescription,
    TopicError,
    TopicSpec,
    admin_client,
    describe_topic,
    ensure_topics,
    topic_name,
    topic_specs,
)

__all__ = [
    # topics
    "TELEMETRY_AREAS",
    "Area",
    "TopicDescription",
    "TopicError",
    "TopicSpec",
    "admin_client",
    "describe_topic",
    "ensure_topics",
    "topic_name",
    "topic_specs",
    # producing
    "DeliveryCallback",
    "DeliveryError",
    "EventCodec",
    "EventProducer",
    "producer_config",
    # transactions
    "DeadlineCalls",
    "TransactionStalledError",
    # consuming
    "METADATA_REFRESH_MS",
    "ConsumedEvent",
    "EventConsumer",
    "EventHandler",
    "consumer_config",
    "poll_batch",
    # dead letters
    "DeadLetter",
    "DeadLetterWriter",
]
