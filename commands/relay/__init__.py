"""The outbox relay: every stored domain event of the command applications, on Kafka, in order.

Run it as ``omium relay`` (``--once`` drains and exits). In code::

    relay = OutboxRelay.create(settings, schema="event_store")
    with relay:
        relay.run(once=True)

Each stored event becomes one Avro event on ``<prefix>.<area>``, keyed by its aggregate id, with
``event_id = uuid5(aggregate_id:version)`` and the per-aggregate hash chain; see
``docs/architecture.md`` ("Outbox relay") for the guarantees.
"""

from omium.commands.relay._batch import BatchEncoder, EncodedBatch, stored_event_json
from omium.commands.relay._map_all import ALL_MAPPINGS
from omium.commands.relay._mapping import (
    EVENT_ID_NAMESPACE,
    EncodedEvent,
    EventEncoder,
    PayloadMapping,
    event_id_for,
)
from omium.commands.relay._publisher import OutgoingMessage, TransactionalPublisher
from omium.commands.relay._relay import (
    OutboxRelay,
    ProgressCallback,
    RelayOptions,
    RelayProgress,
    default_transactional_id,
    sources_of,
)
from omium.commands.relay._sources import START, LogSource, Position, RelayNotification
from omium.commands.relay._store import (
    CHAIN_HEADS_TABLE,
    POSITIONS_TABLE,
    ChainLink,
    PostgresRelayStore,
)
from omium.commands.relay._wakeup import Wakeup
from omium.commands.relay.errors import (
    PublishError,
    RelayError,
    RelayStoreError,
    UnmappableEventError,
)

__all__ = [
    # The relay
    "OutboxRelay",
    "ProgressCallback",
    "RelayOptions",
    "RelayProgress",
    "default_transactional_id",
    # Mapping domain events to Avro
    "ALL_MAPPINGS",
    "EVENT_ID_NAMESPACE",
    "EncodedEvent",
    "EventEncoder",
    "PayloadMapping",
    "event_id_for",
    # Parts
    "BatchEncoder",
    "EncodedBatch",
    "LogSource",
    "RelayNotification",
    "OutgoingMessage",
    "TransactionalPublisher",
    "Wakeup",
    "sources_of",
    "stored_event_json",
    # Position and chain heads
    "START",
    "Position",
    "CHAIN_HEADS_TABLE",
    "POSITIONS_TABLE",
    "ChainLink",
    "PostgresRelayStore",
    # Errors
    "PublishError",
    "RelayError",
    "RelayStoreError",
    "UnmappableEventError",
]
