"""What the Kafka plumbing needs from a serde; the kernel's AvroSerde provides it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class EventCodec(Protocol):
    """Encodes events to bytes and back, and knows which area (topic suffix) a type belongs to."""

    def encode(self, event: Mapping[str, Any]) -> bytes:
        """Encode one event."""
        ...

    def decode(self, data: bytes) -> dict[str, Any]:
        """Decode one event; raise an ``OmiumError`` subclass naming the problem."""
        ...

    def area_of(self, event_type: str) -> str:
        """The topic suffix an event type is published on."""
        ...
