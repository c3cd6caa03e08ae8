"""A deadline decision whose transaction aborts is made again, once, in the next transaction.

The consensus processor keeps round deadlines in an in-memory heap beside its state table. An
aborted transaction rolls the table back (the round is open again), so the heap must still hold
the round: it used to be popped before the commit and lost, and the round never timed out.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

from omium.kernel.serde import AvroSerde
from omium.streams.base import ProcessorConfig, StreamRuntime
from omium.streams.consensus import ConsensusProcessor
from tests.streams.events import round_opened, vote

pytestmark = pytest.mark.integration

DECISIONS = (b"ConsensusReached", b"ConsensusFailed")


class AbortFirstDecision:
    """A producer whose first transaction carrying a consensus decision fails to commit.

    The error is one that requires an abort (as a broker timeout or a lost coordinator gives),
    so the runtime aborts the transaction, rolls its tables back and goes on.
    """

    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self._decision_pending = False
        self.injected = 0

    def begin_transaction(self, *args: Any) -> None:
        self._decision_pending = False
        self._producer.begin_transaction(*args)

    def produce(self, topic: str, **kwargs: Any) -> None:
        headers = dict(kwargs.get("headers") or [])
        if headers.get("event_type") in DECISIONS:
            self._decision_pending = True
        self._producer.produce(topic, **kwargs)

    def commit_transaction(self, *args: Any) -> None:
        if self._decision_pending and not self.injected:
            self.injected += 1
            error = KafkaError(KafkaError._FAIL, "injected failure", txn_requires_abort=True)
            raise KafkaException(error)
        self._producer.commit_transaction(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)


def test_a_timeout_decision_lost_to_an_aborted_transaction_is_made_again(
    config_factory: Callable[..., ProcessorConfig],
    serde: AvroSerde,
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    runtime = StreamRuntime(
        ConsensusProcessor(deadline_grace=timedelta(milliseconds=100)),
        config_factory("consensus"),
        serde=serde,
    )
    runtime.start()
    failing = AbortFirstDecision(runtime._producer)  # type: ignore[arg-type]
    runtime._producer = failing  # type: ignore[assignment]
    round_id = uuid.uuid4()
    publish(round_opened(round_id, ["a", "b", "c"], deadline_in_s=1.0), vote(round_id, "a", "y"))
    try:
        deadline = time.monotonic() + 30
        while runtime.stats["transactions"] < 50 and time.monotonic() < deadline:
            runtime.run_once()
            if failing.injected and runtime.stats["aborts"] and _decided(runtime):
                break
    finally:
        runtime.close()

    assert failing.injected == 1 and runtime.stats["aborts"] >= 1
    decisions = read_events(
        "consensus",
        count=1,
        timeout_s=10,
        where=lambda e: e["event_type"] == "ConsensusFailed",
    )
    assert [d["correlation_id"] for d in decisions] == [str(round_id)]
    assert decisions[0]["payload"]["reason"] == "insufficient_votes"


def _decided(runtime: StreamRuntime) -> bool:
    """Whether a round of the runtime's tables has left ``open`` (a committed decision)."""
    table = runtime.tables["rounds"]
    return any(
        state["status"] != "open"
        for partition in table.partitions
        for _, state in table.items(partition)
    )
