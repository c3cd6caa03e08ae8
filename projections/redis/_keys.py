"""Redis key names of the live read model; every key starts with ``<topic prefix>:rm:``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisKeys:
    """Key names for one deployment (topic prefix)."""

    prefix: str

    @classmethod
    def for_prefix(cls, topic_prefix: str) -> RedisKeys:
        """The keys of the read model of a topic prefix."""
        return cls(f"{topic_prefix}:rm")

    @property
    def offsets(self) -> str:
        """Hash ``topic|partition`` → next offset, written with each batch."""
        return f"{self.prefix}:offsets"

    def seen(self, event_id: str) -> str:
        """Marker of an applied event (expires), so a redelivery is skipped."""
        return f"{self.prefix}:seen:{event_id}"

    def execution(self, tenant_id: str, execution_id: str) -> str:
        """Hash: live state of one run."""
        return f"{self.prefix}:exec:{tenant_id}:{execution_id}"

    def running(self, tenant_id: str) -> str:
        """Set of the tenant's runs that have not ended."""
        return f"{self.prefix}:running:{tenant_id}"

    def execution_events(self, tenant_id: str, execution_id: str) -> str:
        """Stream of one run's events (what SSE subscribers read)."""
        return f"{self.prefix}:exec-events:{tenant_id}:{execution_id}"

    def round(self, tenant_id: str, round_id: str) -> str:
        """Hash: live tally of one consensus round."""
        return f"{self.prefix}:round:{tenant_id}:{round_id}"

    def tenant_events(self, tenant_id: str) -> str:
        """Stream of the tenant's recent events (WebSocket fan-out)."""
        return f"{self.prefix}:events:{tenant_id}"


def offset_field(topic: str, partition: int) -> str:
    """Field of a partition in the offsets hash."""
    return f"{topic}|{partition}"


def parse_offset_field(field: str) -> tuple[str, int]:
    """``(topic, partition)`` of an offsets-hash field."""
    topic, _, partition = field.rpartition("|")
    return topic, int(partition)
