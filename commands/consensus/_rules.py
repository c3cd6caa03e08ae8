"""Consensus rules and tallying: pure functions shared by the aggregate and the stream processor.

A round has participants (each with a weight, 1 unless the rule is ``weighted``) and a rule that
says how much support one choice needs:

- ``majority``: more than half of the participants (``n // 2 + 1`` votes);
- ``unanimous``: every participant;
- ``k_of_n``: at least ``k`` participants;
- ``weighted``: at least ``threshold`` (0 < threshold <= 1) of the total weight.

:func:`evaluate` decides a round from its votes, and its answer never changes once it is not
``open``, however many more votes arrive:

1. If two or more choices have the required support, the round failed as ``split``.
2. If exactly one has it and no other choice can still get it (counting the weight of those who
   have not voted, or nobody once the deadline has passed), that choice is the decision.
3. If no choice can get the required support even if everyone left votes for it, ``split``.
4. Past the deadline: ``insufficient_votes`` if all votes cast together weigh less than the
   required support (too few voted), else ``timeout`` (enough voted, but they did not agree).
5. Otherwise the round is still ``open``.

Weights are compared as exact fractions (``Fraction(str(weight))``), so ``0.1 + 0.2`` reaches a
threshold of ``0.3``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction

from omium.commands.errors import InvalidCommandError


class Rule(StrEnum):
    """How much support a choice needs."""

    MAJORITY = "majority"
    UNANIMOUS = "unanimous"
    WEIGHTED = "weighted"
    K_OF_N = "k_of_n"


class RoundStatus(StrEnum):
    """Whether a round is still open, or how it ended."""

    OPEN = "open"
    REACHED = "reached"
    FAILED = "failed"


class FailureReason(StrEnum):
    """Why a round failed."""

    TIMEOUT = "timeout"
    SPLIT = "split"
    INSUFFICIENT_VOTES = "insufficient_votes"


@dataclass(frozen=True)
class RoundRule:
    """The participants of a round and the rule they decide by.

    Build it with :meth:`create`, which validates; the constructor trusts its arguments.
    """

    rule: Rule
    participants: tuple[str, ...]
    weights: Mapping[str, Fraction] = field(default_factory=dict)
    threshold: Fraction | None = None
    k: int | None = None

    @classmethod
    def create(
        cls,
        rule: str,
        participants: Sequence[str],
        *,
        weights: Mapping[str, float] | None = None,
        threshold: float | None = None,
        k: int | None = None,
    ) -> RoundRule:
        """Validate and build a rule.

        Args:
            rule: ``majority``, ``unanimous``, ``weighted`` or ``k_of_n``.
            participants: Unique, non-empty participant ids.
            weights: Per participant, only for ``weighted`` (default 1 each); all positive.
            threshold: Required share of the total weight, only (and required) for ``weighted``.
            k: Required number of agreeing participants, only (and required) for ``k_of_n``.

        Raises:
            InvalidCommandError: With a ``reason`` naming the problem.
        """
        if rule not in {r.value for r in Rule}:
            raise _invalid(f"unknown rule {rule!r}", "invalid_rule", "rule")
        checked_rule = Rule(rule)
        people = _check_participants(participants)
        return cls(
            rule=checked_rule,
            participants=people,
            weights=_check_weights(checked_rule, people, weights),
            threshold=_check_threshold(checked_rule, threshold),
            k=_check_k(checked_rule, people, k),
        )

    def weight(self, participant: str) -> Fraction:
        """A participant's voting weight."""
        return self.weights.get(participant, Fraction(1))

    @property
    def total_weight(self) -> Fraction:
        """The weight of all participants together."""
        return sum((self.weight(p) for p in self.participants), Fraction(0))

    @property
    def required(self) -> Fraction:
        """The support one choice needs to be the decision."""
        n = len(self.participants)
        if self.rule is Rule.MAJORITY:
            return Fraction(n // 2 + 1)
        if self.rule is Rule.UNANIMOUS:
            return Fraction(n)
        if self.rule is Rule.K_OF_N:
            assert self.k is not None
            return Fraction(self.k)
        assert self.threshold is not None
        return self.threshold * self.total_weight


@dataclass(frozen=True)
class Tally:
    """Votes counted under a rule (weights as floats, for events and read models).

    Attributes:
        support: Weight of the votes for each choice.
        votes: Number of votes cast.
        cast_weight: Weight of all votes cast.
        remaining_weight: Weight of the participants who have not voted.
        required: Support a choice needs.
    """

    support: dict[str, float]
    votes: int
    cast_weight: float
    remaining_weight: float
    required: float


@dataclass(frozen=True)
class Evaluation:
    """The state of a round: open, reached (with a decision) or failed (with a reason)."""

    status: RoundStatus
    tally: Tally
    decision: str | None = None
    reason: FailureReason | None = None


def exact_support(rule: RoundRule, votes: Mapping[str, str]) -> dict[str, Fraction]:
    """Weight of the votes for each choice, exactly (votes of non-participants are ignored)."""
    support: dict[str, Fraction] = {}
    for participant, choice in votes.items():
        if participant in rule.participants:
            support[choice] = support.get(choice, Fraction(0)) + rule.weight(participant)
    return support


def remaining_weight(rule: RoundRule, votes: Mapping[str, str]) -> Fraction:
    """Weight of the participants who have not voted yet."""
    return sum((rule.weight(p) for p in rule.participants if p not in votes), Fraction(0))


def tally_votes(rule: RoundRule, votes: Mapping[str, str]) -> Tally:
    """Count votes (participant -> choice) under a rule."""
    support = exact_support(rule, votes)
    cast = sum(support.values(), Fraction(0))
    return Tally(
        support={choice: float(weight) for choice, weight in sorted(support.items())},
        votes=sum(1 for p in votes if p in rule.participants),
        cast_weight=float(cast),
        remaining_weight=float(remaining_weight(rule, votes)),
        required=float(rule.required),
    )


def can_still_be_met(rule: RoundRule, votes: Mapping[str, str]) -> bool:
    """Whether some choice could still get the required support if everyone left voted for it."""
    best = max(exact_support(rule, votes).values(), default=Fraction(0))
    return best + remaining_weight(rule, votes) >= rule.required


def evaluate(rule: RoundRule, votes: Mapping[str, str], *, deadline_passed: bool) -> Evaluation:
    """Decide a round from its votes (see the module docstring for the exact order of checks).

    Args:
        rule: The round's rule.
        votes: Participant -> choice.
        deadline_passed: Whether the round's deadline is reached (no more votes will come).

    Returns:
        ``open``, ``reached`` with the decision, or ``failed`` with the reason; plus the tally.
    """
    support = exact_support(rule, votes)
    tally = tally_votes(rule, votes)
    required = rule.required
    # Once the deadline passed, nobody else can vote.
    still_to_vote = Fraction(0) if deadline_passed else remaining_weight(rule, votes)
    qualifying = [choice for choice, weight in support.items() if weight >= required]
    if len(qualifying) > 1:
        return Evaluation(RoundStatus.FAILED, tally, reason=FailureReason.SPLIT)
    if qualifying:
        (winner,) = qualifying
        runner_up = max((w for c, w in support.items() if c != winner), default=Fraction(0))
        if runner_up + still_to_vote < required:
            return Evaluation(RoundStatus.REACHED, tally, decision=winner)
        return Evaluation(RoundStatus.OPEN, tally)
    if not can_still_be_met(rule, votes):
        return Evaluation(RoundStatus.FAILED, tally, reason=FailureReason.SPLIT)
    if deadline_passed:
        cast = sum(support.values(), Fraction(0))
        reason = FailureReason.INSUFFICIENT_VOTES if cast < required else FailureReason.TIMEOUT
        return Evaluation(RoundStatus.FAILED, tally, reason=reason)
    return Evaluation(RoundStatus.OPEN, tally)


def _check_participants(participants: Sequence[str]) -> tuple[str, ...]:
    if isinstance(participants, str) or not isinstance(participants, Sequence) or not participants:
        raise _invalid("participants must be a non-empty list", "invalid_participants")
    if not all(isinstance(p, str) and p.strip() for p in participants):
        raise _invalid("participant ids must be non-empty strings", "invalid_participants")
    if len(set(participants)) != len(participants):
        raise _invalid("participants must be unique", "duplicate_participant")
    return tuple(participants)


def _check_weights(
    rule: Rule, participants: tuple[str, ...], weights: Mapping[str, float] | None
) -> dict[str, Fraction]:
    if weights is None:
        return {}
    if rule is not Rule.WEIGHTED:
        raise _invalid(
            "weights are only used by the weighted rule", "weights_not_allowed", "weights"
        )
    if set(weights) != set(participants):
        raise _invalid(
            "give a weight for every participant, and only them", "weights_mismatch", "weights"
        )
    exact: dict[str, Fraction] = {}
    for participant, weight in weights.items():
        if not _is_number(weight) or not math.isfinite(weight) or weight <= 0:
            raise _invalid("weights must be positive numbers", "invalid_weight", "weights")
        exact[participant] = Fraction(str(weight))
    return exact


def _check_threshold(rule: Rule, threshold: float | None) -> Fraction | None:
    if rule is not Rule.WEIGHTED:
        if threshold is not None:
            raise _invalid(
                "threshold is only used by the weighted rule", "threshold_not_allowed", "threshold"
            )
        return None
    if threshold is None or not _is_number(threshold) or not 0 < threshold <= 1:
        raise _invalid(
            "weighted rounds need a threshold in (0, 1]", "invalid_threshold", "threshold"
        )
    return Fraction(str(threshold))


def _check_k(rule: Rule, participants: tuple[str, ...], k: int | None) -> int | None:
    if rule is not Rule.K_OF_N:
        if k is not None:
            raise _invalid("k is only used by the k_of_n rule", "k_not_allowed", "k")
        return None
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(participants):
        raise _invalid("k_of_n rounds need 1 <= k <= number of participants", "invalid_k", "k")
    return k


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _invalid(message: str, reason: str, field_name: str = "participants") -> InvalidCommandError:
    return InvalidCommandError(message, reason=reason, field=field_name)
