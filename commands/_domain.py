"""What every Omium aggregate shares: it belongs to one tenant, and so does each of its events."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate


class TenantScoped:
    """Mixin (before ``Aggregate``) that stamps ``tenant_id`` on every event.

    The relay puts the tenant in each Kafka envelope and consumers filter by it; carrying it on
    every event spares them from looking up the aggregate's first event.
    """

    tenant_id: str

    class Event(Aggregate.Event):
        """Base of the aggregate's events: each carries its tenant."""

        tenant_id: str

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        """Trigger an event with this aggregate's ``tenant_id``."""
        kwargs.setdefault("tenant_id", self.tenant_id)
        super().trigger_event(event_class, **kwargs)  # type: ignore[misc]
