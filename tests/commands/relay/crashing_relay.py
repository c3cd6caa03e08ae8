"""A relay process that kills itself with SIGKILL at one chosen point of one batch.

``python -m tests.commands.relay.crashing_relay <point> <batch> <batch_size>`` runs the same relay
as ``omium relay`` (settings and schema from the same ``OMIUM_*`` environment), with the
relay's own methods wrapped so that, in its ``<batch>``-th Kafka transaction, the process sends
itself ``SIGKILL`` at ``<point>``: no ``finally`` block, no ``atexit``, no flush runs, exactly as
when the kernel kills it. The points, in the order a batch passes them:

The process prints ``SIGKILL at <point> after <produced> of <size> messages`` first: how many of
the batch's messages (its position record, last, included) were produced before it died.

- ``before_produce``: the batch is read and encoded; nothing of it was sent.
- ``mid_produce``: half of the batch's messages are produced and delivered to the broker inside
  the open transaction.
- ``before_commit``: every message of the batch (its position record included) is on the
  broker inside the open transaction; ``commit_transaction`` was not called.
- ``after_kafka_commit``: Kafka committed the batch; PostgreSQL has not stored its positions.
- ``after_position_write``: PostgreSQL stored the positions too; the next batch has not started.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from omium.commands.relay import (
    OutboxRelay,
    OutgoingMessage,
    PostgresRelayStore,
    RelayOptions,
    TransactionalPublisher,
)
from omium.kernel.settings import load_settings

POINTS = (
    "before_produce",
    "mid_produce",
    "before_commit",
    "after_kafka_commit",
    "after_position_write",
)
SCHEMA_ENV = "OMIUM_RELAY__SCHEMA"


def _die(point: str, state: dict[str, int]) -> None:
    # The test reads how much of the batch was sent: "after <produced> of <size> messages".
    print(
        f"crashing_relay: SIGKILL at {point} after {state['produced']} of {state['size']} messages",
        flush=True,
    )
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str, batch: int) -> None:
    """Wrap the relay's methods so that batch number ``batch`` (1-based) dies at ``point``."""
    if point not in POINTS:
        raise SystemExit(f"unknown point {point!r}; one of {', '.join(POINTS)}")
    state = {"begun": 0, "committed": 0, "produced": 0, "size": 0}
    publish = TransactionalPublisher.publish
    produce = TransactionalPublisher._produce
    commit_kafka = TransactionalPublisher._commit
    commit_store = PostgresRelayStore.commit

    def in_batch() -> bool:
        return state["begun"] == batch

    def publish_wrapper(self: TransactionalPublisher, messages: Sequence[OutgoingMessage]) -> None:
        state["begun"] += 1
        state["produced"], state["size"] = 0, len(messages)
        if in_batch() and point == "before_produce":
            _die(point, state)
        publish(self, messages)
        state["committed"] = state["begun"]

    def produce_wrapper(self: TransactionalPublisher, message: OutgoingMessage) -> None:
        produce(self, message)
        state["produced"] += 1
        if in_batch() and point == "mid_produce" and state["produced"] == state["size"] // 2:
            self._producer.flush(10)
            _die(point, state)

    def commit_kafka_wrapper(self: TransactionalPublisher, context: str) -> None:
        if in_batch() and point == "before_commit":
            self._producer.flush(10)
            _die(point, state)
        commit_kafka(self, context)

    def commit_store_wrapper(self: PostgresRelayStore, positions: Any, heads: Any) -> None:
        after_batch = state["committed"] == batch
        if after_batch and point == "after_kafka_commit":
            _die(point, state)
        commit_store(self, positions, heads)
        if after_batch and point == "after_position_write":
            _die(point, state)

    TransactionalPublisher.publish = publish_wrapper  # type: ignore[method-assign]
    TransactionalPublisher._produce = produce_wrapper  # type: ignore[method-assign]
    TransactionalPublisher._commit = commit_kafka_wrapper  # type: ignore[method-assign]
    PostgresRelayStore.commit = commit_store_wrapper  # type: ignore[method-assign]


def main(argv: Sequence[str]) -> None:
    """Arm the chosen point, then relay until killed (or stopped)."""
    point, batch, batch_size = argv[0], int(argv[1]), int(argv[2])
    arm(point, batch)
    settings = load_settings()
    options = RelayOptions(batch_size=batch_size, poll_interval_s=0.1, progress_interval_s=60)
    with OutboxRelay.create(settings, schema=os.environ[SCHEMA_ENV], options=options) as relay:
        relay.run()


if __name__ == "__main__":
    main(sys.argv[1:])
