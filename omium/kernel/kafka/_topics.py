"""Omium's topic layout and its creation from settings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from confluent_kafka import KafkaError, KafkaException

# confluent-kafka's stubs do not re-export these two, though the module defines them.
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # type: ignore[attr-defined]

from omium.kernel.errors import PersistenceError
from omium.kernel.retry import retrying
from omium.kernel.settings import KafkaSettings


class TopicError(PersistenceError):
    """A topic could not be created or described."""


class Area(StrEnum):
    """The topic suffixes; a run's events are keyed by execution id within each."""

    WORKFLOWS = "workflows"
    EXECUTIONS = "executions"
    FAILURES = "failures"
    CONSENSUS = "consensus"
    POLICIES = "policies"
    TRACES = "traces"
    METRICS = "metrics"
    AUDIT = "audit"
    COMMANDS = "commands"
    DLQ = "dlq"


# Telemetry is high volume with no invariants, so it may age out; everything else is the
# replay source for read models and is kept forever.
TELEMETRY_AREAS = frozenset({Area.TRACES, Area.METRICS})


@dataclass(frozen=True)
class TopicSpec:
    """One topic as Omium wants it to exist."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


def topic_name(kafka: KafkaSettings, area: Area | str) -> str:
    """The full topic name of an area under the configured prefix."""
    return f"{kafka.topic_prefix}.{Area(area).value}"


def topic_specs(kafka: KafkaSettings) -> list[TopicSpec]:
    """Every topic Omium uses, with partitions, replication and retention from settings."""
    specs = []
    for area in Area:
        retention = kafka.telemetry_retention_ms if area in TELEMETRY_AREAS else -1
        config = {
            "retention.ms": str(retention),
            "min.insync.replicas": str(min(2, kafka.replication_factor)),
        }
        specs.append(
            TopicSpec(
                name=topic_name(kafka, area),
                partitions=kafka.partitions,
                replication_factor=kafka.replication_factor,
                config=config,
            )
        )
    return specs


def admin_client(kafka: KafkaSettings, errors: list[KafkaError] | None = None) -> AdminClient:
    """An admin client for the configured cluster.

    Args:
        kafka: The cluster and how to authenticate.
        errors: Collects the client's own errors (``error_cb``): librdkafka reports a refused
            login there, while the request that failed only says the transport failed.
    """
    config: dict[str, Any] = {**kafka.client_config(), "client.id": f"{kafka.client_id}-admin"}
    if errors is not None:
        config["error_cb"] = errors.append
    return AdminClient(config)


def ensure_topics(
    kafka: KafkaSettings, *, specs: list[TopicSpec] | None = None, timeout_s: float = 30.0
) -> list[str]:
    """Create the topics that don't exist yet and wait until they are served; the names created.

    Existing topics are left as they are (their partition count is never shrunk or grown here).
    "Served" means listed with every partition led: a consumer that subscribes to a topic its
    broker does not list yet leaves it out of its assignment until its next metadata refresh
    (minutes by default), so a process that creates its own topics must not subscribe before.
    """
    errors: list[KafkaError] = []
    admin = admin_client(kafka, errors)
    wanted = specs if specs is not None else topic_specs(kafka)
    try:
        listed = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        # A refused login (wrong SASL password, untrusted certificate) says why in error_cb.
        admin.poll(0)  # serves error_cb
        failed = exc.args[0].code() if exc.args and isinstance(exc.args[0], KafkaError) else None
        why = next((e for e in reversed(errors) if e.code() != failed), None)
        detail = f" ({why.str()})" if why is not None else ""
        raise TopicError(f"cannot list topics on {kafka.bootstrap_servers}: {exc}{detail}") from exc
    missing = [spec for spec in wanted if spec.name not in listed]
    if not missing:
        # Listed already: served, or a partition is offline (its broker down), which a consumer
        # rides out on its own; starting is not held up for it.
        return []
    created = _create(admin, missing, timeout_s)
    _wait_served(admin, missing, timeout_s)
    return created


def _create(admin: AdminClient, specs: list[TopicSpec], timeout_s: float) -> list[str]:
    futures = admin.create_topics(
        [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=spec.replication_factor,
                config=spec.config,
            )
            for spec in specs
        ],
        operation_timeout=timeout_s,
        request_timeout=timeout_s,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args and exc.args[0].name() == "TOPIC_ALREADY_EXISTS":
                continue  # another process won the race; that is fine
            raise TopicError(f"cannot create topic {name}: {exc}") from exc
    return created


def _wait_served(admin: AdminClient, specs: list[TopicSpec], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            listed = admin.list_topics(timeout=10).topics
        except KafkaException:
            listed = {}  # a broker going away while it answered; ask again until the deadline
        waiting = [spec.name for spec in specs if not _served(listed.get(spec.name))]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise TopicError(f"topics not served after {timeout_s:.0f}s: {', '.join(waiting)}")
        time.sleep(0.1)


def _served(topic: Any) -> bool:
    """Whether a listed topic (``TopicMetadata`` or ``None``) has every partition led.

    Its partition count is not compared with the spec: an existing topic keeps its own.
    """
    if topic is None or topic.error is not None or not topic.partitions:
        return False
    return all(p.leader >= 0 and p.error is None for p in topic.partitions.values())


@dataclass(frozen=True)
class TopicDescription:
    """What the cluster says a topic is."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]


def describe_topic(kafka: KafkaSettings, name: str, *, timeout_s: float = 15.0) -> TopicDescription:
    """Read a topic's partition count, replication factor and effective config.

    A topic created a moment ago reaches each broker's metadata a little later (on a cluster of
    several brokers), and a broker that has not seen it yet answers "unknown" to the metadata
    request and to the config request alike: both are asked again, a few times a second, until
    ``timeout_s``.
    """
    admin = admin_client(kafka)
    attempts = max(1, int(timeout_s / _UNKNOWN_TOPIC_WAIT_S))
    ask = retrying(_UnknownTopic, attempts=attempts, wait_s=_UNKNOWN_TOPIC_WAIT_S, max_wait_s=1.0)
    try:
        return ask(_describe_once, admin, name, timeout_s)
    except _UnknownTopic as exc:
        raise TopicError(f"topic {name}: {exc.error}") from exc
    except KafkaException as exc:
        raise TopicError(f"cannot describe topic {name}: {exc}") from exc


_UNKNOWN_TOPIC_WAIT_S = 0.2


class _UnknownTopic(Exception):
    """A broker does not know the topic (yet)."""

    def __init__(self, error: KafkaError) -> None:
        super().__init__(str(error))
        self.error = error


def _describe_once(admin: AdminClient, name: str, timeout_s: float) -> TopicDescription:
    metadata = admin.list_topics(topic=name, timeout=timeout_s).topics[name]
    if isinstance(metadata.error, KafkaError) and _unknown(metadata.error):
        raise _UnknownTopic(metadata.error)
    if metadata.error is not None:
        raise TopicError(f"topic {name}: {metadata.error}")
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    try:
        entries = admin.describe_configs([resource])[resource].result(timeout=timeout_s)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError) and _unknown(error):
            raise _UnknownTopic(error) from exc
        raise
    partitions = metadata.partitions
    replicas = len(next(iter(partitions.values())).replicas) if partitions else 0
    return TopicDescription(
        name=name,
        partitions=len(partitions),
        replication_factor=replicas,
        config={key: entry.value for key, entry in entries.items()},
    )


def _unknown(error: object) -> bool:
    return isinstance(error, KafkaError) and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
