"""``ensure_topics`` returns only once every topic is served (pure logic, a scripted admin)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from omium.kernel.kafka import TopicError, TopicSpec
from omium.kernel.kafka._topics import _wait_served


@dataclass
class Partition:
    leader: int
    error: Any = None


@dataclass
class Topic:
    partitions: dict[int, Partition]
    error: Any = None


@dataclass
class Listing:
    topics: dict[str, Topic]


@dataclass
class ScriptedAdmin:
    """Answers ``list_topics`` with the listings given, the last one forever after."""

    listings: list[dict[str, Topic]]
    calls: int = field(default=0)

    def list_topics(self, timeout: float) -> Listing:
        self.calls += 1
        return Listing(self.listings[min(self.calls - 1, len(self.listings) - 1)])


SPEC = TopicSpec("t.admission", partitions=2, replication_factor=3)
LED = Topic({0: Partition(1), 1: Partition(2)})


def test_a_topic_is_waited_for_until_its_broker_lists_it_with_every_partition_led() -> None:
    not_yet = Topic({0: Partition(1), 1: Partition(-1)})
    admin = ScriptedAdmin([{}, {"t.admission": not_yet}, {"t.admission": LED}])
    _wait_served(admin, [SPEC], timeout_s=10)  # type: ignore[arg-type]
    assert admin.calls == 3


def test_a_topic_served_at_once_costs_one_request() -> None:
    admin = ScriptedAdmin([{"t.admission": LED}])
    _wait_served(admin, [SPEC], timeout_s=10)  # type: ignore[arg-type]
    assert admin.calls == 1


def test_a_topic_never_served_is_named_when_the_wait_gives_up() -> None:
    admin = ScriptedAdmin([{"t.admission": Topic({0: Partition(-1)})}])
    with pytest.raises(TopicError, match=r"t\.admission"):
        _wait_served(admin, [SPEC], timeout_s=0.5)  # type: ignore[arg-type]
