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

    @classmethod
    def staging(cls, topic_prefix: str, epoch: int) -> RedisKeys:
        """The keys a rebuild writes before they are renamed to the live ones.

        ``<prefix>:rm~<epoch>`` never matches the live keys' pattern ``<prefix>:rm:*``.
        """
        return cls(f"{topic_prefix}:rm~{epoch}")

    @property
    def epoch(self) -> str:
        """String: how many times the read model was rebuilt (absent: never).

        Stream entry ids start again with each rebuild, so cursors carry the epoch
        (:func:`cursor_of`) and a cursor of another epoch gets a "resync" answer.
        """
        return f"{self.prefix}:epoch"

    def pattern(self) -> str:
        """A ``SCAN MATCH`` pattern for every key under this prefix."""
        return _glob_escape(self.prefix) + ":*"

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


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def cursor_of(epoch: int, entry_id: str) -> str:
    """A subscriber's resume point: a stream entry id, preceded by the epoch after a rebuild.

    Epoch 0 (never rebuilt) keeps the bare entry id, so cursors handed out before rebuilds
    existed stay valid.
    """
    return entry_id if epoch == 0 else f"{epoch}:{entry_id}"


def parse_cursor(cursor: str) -> tuple[int, str]:
    """``(epoch, entry id)`` of a cursor made by :func:`cursor_of`."""
    epoch, _, entry_id = cursor.rpartition(":")
    return (int(epoch) if epoch else 0), entry_id


def offset_field(topic: str, partition: int) -> str:
    """Field of a partition in the offsets hash."""
    return f"{topic}|{partition}"


def parse_offset_field(field: str) -> tuple[str, int]:
    """``(topic, partition)`` of an offsets-hash field."""
    topic, _, partition = field.rpartition("|")
    return topic, int(partition)
