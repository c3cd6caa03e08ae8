"""Consensus application, run on the in-memory store and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest

from omium.commands import (
    ConsensusApplication,
    InvalidCommandError,
    NotFoundError,
    VoteRejectedError,
)
from tests.commands.executions.builders import NOW
from tests.commands.helpers import event_names

DEADLINE = NOW + timedelta(minutes=10)


@pytest.fixture
def consensus(app_factory: Callable[..., Any]) -> ConsensusApplication:
    return app_factory(ConsensusApplication)  # type: ignore[no-any-return]


def test_a_weighted_round_from_opening_to_decision(
    consensus: ConsensusApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant, run = tenant_factory(), uuid4()
    opened = consensus.open_round(
        tenant,
        participants=["planner", "critic", "judge"],
        rule="weighted",
        weights={"planner": 1, "critic": 1, "judge": 2},
        threshold=0.5,
        deadline=DEADLINE,
        subject="Which answer is right?",
        execution_id=run,
        now=NOW,
    )
    round_id = opened.aggregate_id

    consensus.cast_vote(tenant, round_id, participant="planner", choice="A", now=NOW)
    early = consensus.decide_round(tenant, round_id, now=NOW)
    consensus.cast_vote(
        tenant, round_id, participant="judge", choice="A", rationale="cites sources", now=NOW
    )
    decided = consensus.decide_round(tenant, round_id, now=NOW)
    again = consensus.decide_round(tenant, round_id, now=NOW)

    assert (early.events, early.data["status"]) == ((), "open")
    assert decided.events == ("ConsensusReached",)
    assert decided.data == {
        "status": "reached",
        "decision": "A",
        "reason": None,
        "tally": {"A": 3.0},
    }
    assert (again.events, again.data["decision"], again.version) == ((), "A", decided.version)
    view = consensus.get_round(tenant, round_id)
    assert (view.status, view.decision, view.tally, view.execution_id) == (
        "reached",
        "A",
        {"A": 3.0},
        run,
    )
    assert view.votes == {"planner": "A", "judge": "A"}
    assert event_names(consensus, round_id) == [
        "ConsensusRoundOpened",
        "VoteCast",
        "VoteCast",
        "ConsensusReached",
    ]


def test_votes_are_refused_with_a_reason(
    consensus: ConsensusApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    round_id = consensus.open_round(
        tenant, participants=["a", "b", "c"], rule="majority", deadline=DEADLINE, now=NOW
    ).aggregate_id
    consensus.cast_vote(tenant, round_id, participant="a", choice="yes", now=NOW)

    def refusal(participant: str, now: Any = NOW) -> str:
        with pytest.raises(VoteRejectedError) as refused:
            consensus.cast_vote(tenant, round_id, participant=participant, choice="no", now=now)
        assert refused.value.round_id == round_id
        assert refused.value.participant == participant
        return refused.value.reason

    assert refusal("a") == "duplicate_vote"
    assert refusal("mallory") == "not_a_participant"
    assert refusal("b", now=DEADLINE) == "deadline_passed"
    consensus.cast_vote(tenant, round_id, participant="b", choice="yes", now=NOW)
    consensus.decide_round(tenant, round_id, now=NOW)
    assert refusal("c") == "round_decided"
    assert consensus.get_round(tenant, round_id).votes == {"a": "yes", "b": "yes"}


def test_a_round_fails_at_its_deadline(
    consensus: ConsensusApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    round_id = consensus.open_round(
        tenant, participants=["a", "b", "c"], rule="unanimous", deadline=DEADLINE, now=NOW
    ).aggregate_id
    consensus.cast_vote(tenant, round_id, participant="a", choice="yes", now=NOW)

    before = consensus.decide_round(tenant, round_id, now=DEADLINE - timedelta(seconds=1))
    failed = consensus.decide_round(tenant, round_id, now=DEADLINE)

    assert before.events == ()
    assert failed.events == ("ConsensusFailed",)
    assert failed.data["reason"] == "insufficient_votes"
    assert consensus.get_round(tenant, round_id).failure_reason == "insufficient_votes"


def test_opening_checks_the_rule_and_deadline(
    consensus: ConsensusApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()

    with pytest.raises(InvalidCommandError) as bad_k:
        consensus.open_round(
            tenant, participants=["a"], rule="k_of_n", k=2, deadline=DEADLINE, now=NOW
        )
    with pytest.raises(InvalidCommandError) as past:
        consensus.open_round(tenant, participants=["a"], rule="majority", deadline=NOW, now=NOW)

    assert (bad_k.value.reason, past.value.reason) == ("invalid_k", "invalid_deadline")


def test_another_tenants_round_is_not_found(
    consensus: ConsensusApplication, tenant_factory: Callable[[], str]
) -> None:
    owner, intruder = tenant_factory(), tenant_factory()
    round_id = consensus.open_round(
        owner, participants=["a"], rule="majority", deadline=DEADLINE, now=NOW
    ).aggregate_id

    with pytest.raises(NotFoundError) as on_read:
        consensus.get_round(intruder, round_id)
    with pytest.raises(NotFoundError):
        consensus.cast_vote(intruder, round_id, participant="a", choice="x", now=NOW)

    assert on_read.value.aggregate_id == round_id
