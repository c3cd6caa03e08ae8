"""Consensus rules and tallying (pure functions reused by the consensus stream processor)."""

from __future__ import annotations

import itertools
import random
from fractions import Fraction
from typing import Any

import pytest

from omium.commands.consensus import (
    FailureReason,
    RoundRule,
    RoundStatus,
    Rule,
    can_still_be_met,
    evaluate,
    tally_votes,
)
from omium.commands.errors import InvalidCommandError

ABCDE = ["a", "b", "c", "d", "e"]


def outcome(rule: RoundRule, votes: dict[str, str], *, deadline_passed: bool = False) -> Any:
    result = evaluate(rule, votes, deadline_passed=deadline_passed)
    return result.status.value, result.decision or (result.reason and result.reason.value)


# Majority ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("votes", "expected"),
    [
        ({}, ("open", None)),
        ({"a": "yes", "b": "yes"}, ("open", None)),
        ({"a": "yes", "b": "yes", "c": "yes"}, ("reached", "yes")),
        ({"a": "yes", "b": "no", "c": "yes", "d": "no", "e": "yes"}, ("reached", "yes")),
        ({"a": "x", "b": "y", "c": "z", "d": "w"}, ("failed", "split")),
        ({"a": "yes", "b": "no", "c": "maybe", "d": "no"}, ("open", None)),
    ],
)
def test_majority_of_five_needs_three(votes: dict[str, str], expected: Any) -> None:
    assert outcome(RoundRule.create("majority", ABCDE), votes) == expected


def test_an_even_tie_is_a_split_not_a_majority() -> None:
    rule = RoundRule.create("majority", ["a", "b", "c", "d"])

    assert rule.required == 3
    assert outcome(rule, {"a": "yes", "b": "yes", "c": "no", "d": "no"}) == ("failed", "split")
    assert outcome(rule, {"a": "yes", "b": "yes", "c": "no"}) == ("open", None)


def test_a_single_participant_decides_alone() -> None:
    assert outcome(RoundRule.create("majority", ["solo"]), {"solo": "go"}) == ("reached", "go")


# Unanimous -----------------------------------------------------------------------------


def test_unanimous_needs_everyone_and_fails_at_the_first_dissent() -> None:
    rule = RoundRule.create("unanimous", ["a", "b", "c"])

    assert outcome(rule, {"a": "yes", "b": "yes"}) == ("open", None)
    assert outcome(rule, {"a": "yes", "b": "yes", "c": "yes"}) == ("reached", "yes")
    assert outcome(rule, {"a": "yes", "b": "no"}) == ("failed", "split")


# k of n --------------------------------------------------------------------------------


def test_k_of_n_reaches_k_agreeing_votes() -> None:
    rule = RoundRule.create("k_of_n", ABCDE, k=3)

    assert outcome(rule, {"a": "ok", "b": "ok"}) == ("open", None)
    assert outcome(rule, {"a": "ok", "b": "ok", "c": "ok"}) == ("reached", "ok")
    assert outcome(rule, {"a": "ok", "b": "ok", "c": "no", "d": "no", "e": "x"}) == (
        "failed",
        "split",
    )


def test_small_k_waits_until_no_other_choice_can_also_reach_k() -> None:
    rule = RoundRule.create("k_of_n", ABCDE, k=2)

    # "approve" has 2, but "reject" could still get 2 from the three who have not voted.
    assert outcome(rule, {"a": "approve", "b": "approve"}) == ("open", None)
    assert outcome(rule, {"a": "approve", "b": "approve", "c": "x", "d": "y"}) == ("open", None)
    assert outcome(rule, {"a": "approve", "b": "approve", "c": "x", "d": "y", "e": "z"}) == (
        "reached",
        "approve",
    )
    assert outcome(rule, {"a": "approve", "b": "approve", "c": "reject", "d": "reject"}) == (
        "failed",
        "split",
    )
    # At the deadline nobody else can vote: the unique qualifying choice wins.
    assert outcome(rule, {"a": "approve", "b": "approve"}, deadline_passed=True) == (
        "reached",
        "approve",
    )


# Weighted ------------------------------------------------------------------------------


def test_weighted_compares_the_share_of_total_weight_with_the_threshold() -> None:
    rule = RoundRule.create(
        "weighted", ["lead", "a", "b"], weights={"lead": 3, "a": 1, "b": 1}, threshold=0.6
    )

    assert rule.total_weight == 5
    assert rule.required == 3
    assert outcome(rule, {"lead": "ship"}) == ("reached", "ship")
    assert outcome(rule, {"a": "ship", "b": "ship"}) == ("open", None)
    assert outcome(rule, {"a": "ship", "b": "ship", "lead": "wait"}) == ("reached", "wait")


def test_weighted_arithmetic_is_exact() -> None:
    weights = {"a": 0.7, "b": 0.1, "c": 0.1, "d": 0.1}
    rule = RoundRule.create("weighted", list(weights), weights=weights, threshold=1)

    assert 0.7 + 0.1 + 0.1 + 0.1 < 1  # in floats, all the weight would not be enough
    assert outcome(rule, dict.fromkeys(weights, "x")) == ("reached", "x")
    assert rule.weight("b") == Fraction(1, 10)


def test_weighted_threshold_of_one_means_all_weight() -> None:
    rule = RoundRule.create("weighted", ["a", "b"], weights={"a": 2, "b": 1}, threshold=1)

    assert outcome(rule, {"a": "x"}) == ("open", None)
    assert outcome(rule, {"a": "x", "b": "x"}) == ("reached", "x")
    assert outcome(rule, {"a": "x", "b": "y"}) == ("failed", "split")


def test_weighted_without_weights_counts_one_each() -> None:
    rule = RoundRule.create("weighted", ["a", "b", "c", "d"], threshold=0.75)

    assert outcome(rule, {"a": "x", "b": "x", "c": "x"}) == ("reached", "x")


def test_a_low_threshold_that_two_choices_meet_is_a_split() -> None:
    rule = RoundRule.create("weighted", ["a", "b", "c", "d"], threshold=0.25)

    assert outcome(rule, {"a": "x", "b": "y"}) == ("failed", "split")


# Deadline and cannot-be-met detection --------------------------------------------------


def test_at_the_deadline_too_few_votes_is_insufficient_votes() -> None:
    rule = RoundRule.create("majority", ABCDE)

    assert outcome(rule, {}, deadline_passed=True) == ("failed", "insufficient_votes")
    assert outcome(rule, {"a": "yes", "b": "yes"}, deadline_passed=True) == (
        "failed",
        "insufficient_votes",
    )


def test_at_the_deadline_enough_votes_that_disagree_is_a_timeout() -> None:
    rule = RoundRule.create("majority", ABCDE)

    # Three voted (enough for a majority) but split 2-1; the two missing votes could have decided.
    assert outcome(rule, {"a": "yes", "b": "yes", "c": "no"}, deadline_passed=True) == (
        "failed",
        "timeout",
    )


def test_a_round_that_cannot_be_met_anymore_fails_before_the_deadline() -> None:
    rule = RoundRule.create("majority", ABCDE)
    votes = {"a": "x", "b": "y", "c": "z", "d": "w"}

    assert not can_still_be_met(rule, votes)
    assert outcome(rule, votes) == ("failed", "split")
    assert can_still_be_met(rule, {"a": "x", "b": "y", "c": "z"})  # e and d could still agree


def test_a_split_is_reported_as_split_even_at_the_deadline() -> None:
    rule = RoundRule.create("unanimous", ["a", "b", "c"])

    assert outcome(rule, {"a": "x", "b": "y"}, deadline_passed=True) == ("failed", "split")


def test_a_decision_at_the_deadline_still_counts() -> None:
    rule = RoundRule.create("majority", ["a", "b", "c"])

    assert outcome(rule, {"a": "y", "b": "y"}, deadline_passed=True) == ("reached", "y")


# Tally ---------------------------------------------------------------------------------


def test_the_tally_counts_support_cast_and_remaining_weight() -> None:
    rule = RoundRule.create(
        "weighted", ["a", "b", "c"], weights={"a": 2, "b": 1.5, "c": 1}, threshold=0.5
    )

    tally = tally_votes(rule, {"a": "x", "b": "y", "outsider": "x"})

    assert tally.support == {"x": 2.0, "y": 1.5}
    assert (tally.votes, tally.cast_weight, tally.remaining_weight, tally.required) == (
        2,
        3.5,
        1.0,
        2.25,
    )


def test_outcomes_never_change_once_final() -> None:
    """Whatever order votes arrive in, a final evaluation stays final (property test)."""
    rng = random.Random(7)
    rules = [
        RoundRule.create("majority", ABCDE),
        RoundRule.create("unanimous", ABCDE),
        RoundRule.create("k_of_n", ABCDE, k=2),
        RoundRule.create("k_of_n", ABCDE, k=4),
        RoundRule.create(
            "weighted", ABCDE, weights={"a": 5, "b": 1, "c": 1, "d": 2, "e": 0.5}, threshold=0.5
        ),
        RoundRule.create("weighted", ABCDE, threshold=0.3),
    ]
    for rule, _ in itertools.product(rules, range(200)):
        order = rng.sample(ABCDE, k=len(ABCDE))
        votes: dict[str, str] = {}
        final = None
        for participant in order:
            votes[participant] = rng.choice(["x", "y", "z"])
            evaluation = evaluate(rule, votes, deadline_passed=False)
            if final is not None:
                assert (evaluation.status, evaluation.decision, evaluation.reason) == final
            elif evaluation.status is not RoundStatus.OPEN:
                final = (evaluation.status, evaluation.decision, evaluation.reason)
        assert final is not None, "all votes are in: the round must be decided"


# Validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"rule": "plurality"}, "invalid_rule"),
        ({"participants": []}, "invalid_participants"),
        ({"participants": "abc"}, "invalid_participants"),
        ({"participants": ["a", ""]}, "invalid_participants"),
        ({"participants": ["a", "a"]}, "duplicate_participant"),
        ({"weights": {"a": 1, "b": 1}}, "weights_not_allowed"),
        ({"threshold": 0.5}, "threshold_not_allowed"),
        ({"k": 1}, "k_not_allowed"),
        ({"rule": "weighted"}, "invalid_threshold"),
        ({"rule": "weighted", "threshold": 0}, "invalid_threshold"),
        ({"rule": "weighted", "threshold": 1.5}, "invalid_threshold"),
        ({"rule": "weighted", "threshold": 0.5, "weights": {"a": 1}}, "weights_mismatch"),
        ({"rule": "weighted", "threshold": 0.5, "weights": {"a": 1, "b": 0}}, "invalid_weight"),
        (
            {"rule": "weighted", "threshold": 0.5, "weights": {"a": 1, "b": float("inf")}},
            "invalid_weight",
        ),
        ({"rule": "k_of_n"}, "invalid_k"),
        ({"rule": "k_of_n", "k": 0}, "invalid_k"),
        ({"rule": "k_of_n", "k": 3}, "invalid_k"),
        ({"rule": "k_of_n", "k": True}, "invalid_k"),
    ],
)
def test_invalid_rules_are_refused(arguments: dict[str, Any], reason: str) -> None:
    values: dict[str, Any] = {"rule": "majority", "participants": ["a", "b"], **arguments}
    rule, participants = values.pop("rule"), values.pop("participants")

    with pytest.raises(InvalidCommandError) as refused:
        RoundRule.create(rule, participants, **values)

    assert refused.value.reason == reason


def test_rule_and_reason_names_are_the_wire_names() -> None:
    assert [r.value for r in Rule] == ["majority", "unanimous", "weighted", "k_of_n"]
    assert [r.value for r in FailureReason] == ["timeout", "split", "insufficient_votes"]
