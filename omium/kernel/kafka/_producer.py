"""An idempotent producer of Omium events."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from omium.kernel.errors import PersistenceError
from omium.kernel.kafka._codec import EventCodec
from omium.kernel.settings import KafkaSettings

Headers = Sequence[tuple[str, bytes]]


class DeliveryError(PersistenceError):
    """Kafka did not acknowledge one or more messages.

    Attributes:
        failures: ``(topic, key, reason)`` for each message that was not acknowledged.
    """

    def __init__(self, failures: list[tuple[str, str | None, str]]) -> None:
        self.failures = failures
        first = failures[0]
        super().__init__(
            f"{len(failures)} message(s) not acknowledged; first: topic={first[0]} "
            f"key={first[1]} reason={first[2]}"
        )


def producer_config(kafka: KafkaSettings, **overrides: Any) -> dict[str, Any]:
    """librdkafka settings for a producer that never loses or duplicates an acknowledged send."""
    config: dict[str, Any] = {
        **kafka.client_config(),
        "client.id": f"{kafka.client_id}-producer",
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": 5,
    }
    config.update(overrides)
    return config


DeliveryCallback = Callable[[KafkaError | None, Message], None]


class EventProducer:
    """Publishes encoded events keyed by aggregate id, so an aggregate's events stay ordered.

    Sends are asynchronous; ``flush`` waits for every acknowledgement and raises ``DeliveryError``
    if any send failed, so a caller acknowledges work only after ``flush`` returns.
    """

    def __init__(self, kafka: KafkaSettings, codec: EventCodec, **overrides: Any) -> None:
        self._kafka = kafka
        self._codec = codec
        self._producer = Producer(producer_config(kafka, **overrides))
        self._failures: list[tuple[str, str | None, str]] = []
        self._lock = threading.Lock()

    def topic_for(self, event_type: str) -> str:
        """The topic an event type is published on."""
        return f"{self._kafka.topic_prefix}.{self._codec.area_of(event_type)}"

    def publish(self, event: Mapping[str, Any]) -> str:
        """Encode and send one event to its area's topic; return the topic."""
        topic = self.topic_for(event["event_type"])
        headers = [
            ("event_id", str(event["event_id"]).encode()),
            ("event_type", str(event["event_type"]).encode()),
            ("tenant_id", str(event["tenant_id"]).encode()),
        ]
        self.send(
            topic, key=str(event["aggregate_id"]), value=self._codec.encode(event), headers=headers
        )
        return topic

    def send(
        self,
        topic: str,
        *,
        key: str | None,
        value: bytes,
        headers: Headers | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        """Send raw bytes; failures surface at the next ``flush``.

        Args:
            topic: Where to.
            key: The partitioning key.
            value: The encoded message.
            headers: Kafka headers.
            on_delivery: Also called with ``(error or None, message)`` once Kafka answered,
                from whichever thread serves the producer (:meth:`poll`, :meth:`flush`).
        """

        def delivered(error: KafkaError | None, message: Message) -> None:
            self._on_delivery(error, message)
            if on_delivery is not None:
                on_delivery(error, message)

        while True:
            try:
                self._producer.produce(
                    topic,
                    key=key.encode() if key is not None else None,
                    value=value,
                    headers=list(headers or []),
                    on_delivery=delivered,
                )
                break
            except BufferError:
                # The local queue is full: serve callbacks to drain it, then try again.
                self._producer.poll(0.1)
            except KafkaException as exc:
                raise PersistenceError(f"cannot send to {topic}: {exc}") from exc
        self._producer.poll(0)

    def poll(self, timeout_s: float) -> None:
        """Serve delivery callbacks, waiting up to ``timeout_s`` for the first one."""
        self._producer.poll(timeout_s)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait for every pending acknowledgement; raise ``DeliveryError`` on any failure."""
        remaining = self._producer.flush(timeout_s)
        with self._lock:
            failures, self._failures = self._failures, []
        if remaining:
            failures.append(("*", None, f"{remaining} message(s) still pending after {timeout_s}s"))
        if failures:
            raise DeliveryError(failures)

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush and release the producer."""
        self.flush(timeout_s)

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            return
        key = message.key()
        with self._lock:
            self._failures.append(
                (message.topic() or "?", key.decode(errors="replace") if key else None, str(error))
            )
