"""The consensus processor on real Kafka: every rule, ties, weights, timeouts, refused votes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omium.streams.base import ProcessorConfig
from omium.streams.consensus import ConsensusProcessor
from tests.streams.conftest import RunningRuntime
from tests.streams.events import round_opened, vote

pytestmark = pytest.mark.integration

DECISIONS = ("ConsensusReached", "ConsensusFailed")


@pytest.fixture
def consensus_factory(
    config_factory: Callable[..., ProcessorConfig], runtime_factory: Callable[..., RunningRuntime]
) -> Callable[[], RunningRuntime]:
    """Starts a consensus processor on this test's topics."""

    def start() -> RunningRuntime:
        processor = ConsensusProcessor(deadline_grace=timedelta(milliseconds=200))
        return runtime_factory(processor, config_factory("consensus"))

    return start


def _decisions(
    read_events: Callable[..., list[dict[str, Any]]], count: int, **kwargs: Any
) -> dict[str, dict[str, Any]]:
    events = read_events(
        "consensus", count=count, where=lambda e: e["event_type"] in DECISIONS, **kwargs
    )
    by_round: dict[str, dict[str, Any]] = {}
    for event in events:
        assert event["correlation_id"] not in by_round, "a round was decided twice"
        by_round[event["correlation_id"]] = event
    return by_round


def test_each_rule_decides_as_soon_as_the_outcome_is_certain(
    consensus_factory: Callable[[], RunningRuntime],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    majority, unanimous, weighted, k_of_n, tie = (uuid.uuid4() for _ in range(5))
    consensus_factory()

    publish(
        round_opened(majority, ["a", "b", "c"]),
        vote(majority, "a", "yes"),
        vote(majority, "b", "yes"),
        round_opened(unanimous, ["a", "b", "c"], rule="unanimous"),
        vote(unanimous, "a", "yes"),
        vote(unanimous, "b", "no"),
        round_opened(
            weighted,
            ["a", "b", "c"],
            rule="weighted",
            weights={"a": 0.5, "b": 0.3, "c": 0.2},
            threshold=0.6,
        ),
        vote(weighted, "a", "yes"),
        vote(weighted, "c", "yes"),
        round_opened(k_of_n, ["a", "b", "c", "d"], rule="k_of_n", k=2),
        vote(k_of_n, "a", "no"),
        vote(k_of_n, "b", "yes"),
        vote(k_of_n, "c", "yes"),
        vote(k_of_n, "d", "no"),
        round_opened(tie, ["a", "b", "c", "d"]),
        vote(tie, "a", "yes"),
        vote(tie, "b", "no"),
        vote(tie, "c", "yes"),
        vote(tie, "d", "no"),
    )

    found = _decisions(read_events, 5, settle_s=1.0)
    assert len(found) == 5
    reached = found[str(majority)]["payload"]
    assert (reached["decision"], reached["agreed"], reached["abstained"]) == (
        "yes",
        ["a", "b"],
        ["c"],
    )
    assert reached["tally"] == {"yes": 2.0}
    assert found[str(unanimous)]["payload"]["reason"] == "split"
    assert found[str(weighted)]["payload"]["decision"] == "yes"
    assert found[str(weighted)]["payload"]["tally"] == {"yes": pytest.approx(0.7)}
    # k_of_n: two "yes" reach k=2, but two "no" could still tie it until the last vote.
    assert found[str(k_of_n)]["event_type"] == "ConsensusFailed"
    assert found[str(k_of_n)]["payload"]["reason"] == "split"
    assert found[str(tie)]["payload"]["reason"] == "split"
    assert found[str(tie)]["payload"]["votes_received"] == 4


def test_a_deadline_fails_the_round_with_timeout_or_insufficient_votes(
    consensus_factory: Callable[[], RunningRuntime],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    too_few, disagreed, reached_at_deadline = (uuid.uuid4() for _ in range(3))
    consensus_factory()

    publish(
        round_opened(too_few, ["a", "b", "c"], deadline_in_s=1.5),
        vote(too_few, "a", "yes"),
        # Cast after the deadline (by its own clock): refused, whenever it is processed.
        vote(too_few, "b", "yes", at=datetime.now(UTC) + timedelta(seconds=5)),
        round_opened(disagreed, ["a", "b", "c"], rule="k_of_n", k=2, deadline_in_s=1.5),
        vote(disagreed, "a", "yes"),
        vote(disagreed, "b", "no"),
        round_opened(reached_at_deadline, ["a", "b", "c"], rule="k_of_n", k=1, deadline_in_s=1.5),
        vote(reached_at_deadline, "a", "yes"),
    )

    found = _decisions(read_events, 3, timeout_s=20)
    assert found[str(too_few)]["payload"]["reason"] == "insufficient_votes"
    assert found[str(disagreed)]["payload"]["reason"] == "timeout"
    assert found[str(reached_at_deadline)]["payload"]["decision"] == "yes"
    (late,) = read_events("consensus", count=1, where=lambda e: e["event_type"] == "VoteRejected")
    assert (late["payload"]["voter"], late["payload"]["reason"]) == ("b", "round_closed")


def test_duplicate_foreign_and_late_votes_are_rejected_and_change_nothing(
    consensus_factory: Callable[[], RunningRuntime],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    round_id = uuid.uuid4()
    consensus_factory()
    first = vote(round_id, "a", "yes")

    publish(
        round_opened(round_id, ["a", "b", "c"]),
        first,
        first,  # redelivered by an at-least-once relay: ignored, not rejected
        vote(round_id, "a", "no"),
        vote(round_id, "mallory", "no"),
        vote(round_id, "b", "yes"),
        vote(round_id, "c", "no"),
    )

    rejected = read_events(
        "consensus", count=3, where=lambda e: e["event_type"] == "VoteRejected", settle_s=1.0
    )
    reasons = sorted((e["payload"]["voter"], e["payload"]["reason"]) for e in rejected)
    assert reasons == [("a", "duplicate"), ("c", "round_closed"), ("mallory", "not_participant")]
    decision = _decisions(read_events, 1)[str(round_id)]
    assert decision["payload"]["decision"] == "yes"
    assert decision["payload"]["tally"] == {"yes": 2.0}


def test_each_decision_issues_one_decide_round_command(
    consensus_factory: Callable[[], RunningRuntime],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    round_id = uuid.uuid4()
    consensus_factory()

    publish(round_opened(round_id, ["a", "b"]), vote(round_id, "a", "x"), vote(round_id, "b", "x"))

    commands = read_events("commands", count=1, settle_s=1.0)
    assert len(commands) == 1
    payload = commands[0]["payload"]
    assert (payload["command"], payload["target_id"]) == ("consensus.decide_round", str(round_id))
    assert payload["issued_by"] == "streams.consensus"
