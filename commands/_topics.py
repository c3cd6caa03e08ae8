"""Topics stored before the ``omium.*`` namespace: old event stores stay readable.

The event store records each event's class as a topic (``module:qualname``). Until 0.1 the write
side was the top-level package ``commands``, so stores written then hold topics such as
``commands.executions.domain:Execution.StepStarted``. Registering those names for the moved
classes lets the library rebuild old aggregates and the relay publish their events unchanged.
"""

from __future__ import annotations

from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.utils import get_topic, register_topic

NAMESPACE_PREFIX = "omium."


def legacy_topic(topic: str) -> str | None:
    """The topic a class had before the namespace move, or None if it had no other."""
    return topic.removeprefix(NAMESPACE_PREFIX) if topic.startswith(NAMESPACE_PREFIX) else None


def register_legacy_topics(*aggregates: type[Aggregate]) -> None:
    """Resolve each aggregate's and each of its event classes' pre-namespace topic to it."""
    for aggregate in aggregates:
        classes: list[type] = [aggregate]
        classes += [
            value
            for value in vars(aggregate).values()
            if isinstance(value, type) and issubclass(value, CanMutateAggregate)
        ]
        for cls in classes:
            old = legacy_topic(get_topic(cls))
            if old is not None:
                register_topic(old, cls)
