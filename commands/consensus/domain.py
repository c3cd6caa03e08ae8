"""The ConsensusRound aggregate: participants vote once each, then the round is decided.

The counting and the decision are the pure functions of ``_rules.py``; the aggregate guards who
may vote and when, and records the outcome. Command methods check first and then call the
private ``@event`` method, whose body only applies the change (it also runs on replay).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from omium.commands._domain import TenantScoped
from omium.commands.consensus._rules import (
    Evaluation,
    FailureReason,
    RoundRule,
    RoundStatus,
    evaluate,
    tally_votes,
)
from omium.commands.errors import InvalidCommandError, VoteRejectedError


class ConsensusRound(TenantScoped, Aggregate):
    """One decision taken together by several agents (or people).

    Attributes:
        tenant_id: Owning tenant.
        participants: Who may vote.
        rule: ``majority``, ``unanimous``, ``weighted`` or ``k_of_n``.
        weights: Per participant, for ``weighted`` rounds (else None: 1 each).
        threshold: Required share of the total weight (``weighted``).
        k: Required number of agreeing votes (``k_of_n``).
        deadline: After it, no votes are taken and the round can be decided as failed.
        subject: What is being decided (free text).
        execution_id: The run the round belongs to, if any.
        votes: Participant -> choice.
        status: ``open``, ``reached`` or ``failed``.
        decision: The chosen option once reached.
        failure_reason: ``timeout``, ``split`` or ``insufficient_votes`` once failed.
        final_tally: Support per choice when the round was decided.
    """

    @classmethod
    def open_round(
        cls,
        *,
        tenant_id: str,
        participants: list[str],
        rule: str,
        deadline: datetime,
        now: datetime,
        weights: dict[str, float] | None = None,
        threshold: float | None = None,
        k: int | None = None,
        subject: str | None = None,
        execution_id: UUID | None = None,
        round_id: UUID | None = None,
    ) -> ConsensusRound:
        """Open a round, with a new random id unless ``round_id`` is given.

        A workflow's consensus step names its round (derived from the run, the step and the
        run's rollbacks), so a retried step finds the round it opened before.

        Raises:
            InvalidCommandError: Bad participants, rule parameters or deadline.
        """
        RoundRule.create(rule, participants, weights=weights, threshold=threshold, k=k)
        if not isinstance(deadline, datetime) or deadline.tzinfo is None or deadline <= now:
            raise InvalidCommandError(
                "deadline must be a timezone-aware time in the future",
                reason="invalid_deadline",
                field="deadline",
            )
        # The created event of the decorated __init__ (named by @event), with an id given.
        opened: Any = getattr(cls, "ConsensusRoundOpened")  # noqa: B009 - made by @event
        return cls._create(
            opened,
            id=round_id,  # None: create_id() gives a random one
            tenant_id=tenant_id,
            participants=list(participants),
            rule=rule,
            weights=None if weights is None else {p: float(w) for p, w in weights.items()},
            threshold=None if threshold is None else float(threshold),
            k=k,
            deadline=deadline,
            subject=subject,
            execution_id=execution_id,
        )

    @event("ConsensusRoundOpened")
    def __init__(
        self,
        *,
        tenant_id: str,
        participants: list[str],
        rule: str,
        weights: dict[str, float] | None,
        threshold: float | None,
        k: int | None,
        deadline: datetime,
        subject: str | None,
        execution_id: UUID | None,
    ) -> None:
        """Apply ``ConsensusRoundOpened``: a round with no votes yet."""
        self.tenant_id = tenant_id
        self.participants = participants
        self.rule = rule
        self.weights = weights
        self.threshold = threshold
        self.k = k
        self.deadline = deadline
        self.subject = subject
        self.execution_id = execution_id
        self.votes: dict[str, str] = {}
        self.status = RoundStatus.OPEN
        self.decision: str | None = None
        self.failure_reason: str | None = None
        self.final_tally: dict[str, float] = {}

    @property
    def round_rule(self) -> RoundRule:
        """The rule, rebuilt from the opening event (validated when the round was opened)."""
        return RoundRule.create(
            self.rule, self.participants, weights=self.weights, threshold=self.threshold, k=self.k
        )

    def cast_vote(
        self, participant: str, choice: str, *, rationale: str | None = None, now: datetime
    ) -> None:
        """Count one participant's vote.

        Raises:
            VoteRejectedError: ``round_decided``, ``not_a_participant``, ``duplicate_vote`` or
                ``deadline_passed``.
            InvalidCommandError: An empty choice.
        """
        self.check_can_vote(participant, now)
        if not isinstance(choice, str) or not choice.strip():
            raise InvalidCommandError(
                "choice must be a non-empty string", reason="invalid_choice", field="choice"
            )
        weight = float(self.round_rule.weight(participant))
        self._cast_vote(participant=participant, choice=choice, weight=weight, rationale=rationale)

    @event("VoteCast")
    def _cast_vote(
        self, participant: str, choice: str, weight: float, rationale: str | None
    ) -> None:
        self.votes[participant] = choice

    def decide(self, *, now: datetime) -> Evaluation:
        """Decide the round if its votes (or the deadline) allow it.

        Records ``ConsensusReached`` or ``ConsensusFailed`` when the evaluation is final, and
        nothing while the round is still open or was decided before.

        Returns:
            The evaluation (for an already decided round, the recorded outcome).
        """
        if self.status is not RoundStatus.OPEN:
            return self.recorded_outcome()
        evaluation = evaluate(self.round_rule, self.votes, deadline_passed=now >= self.deadline)
        if evaluation.status is RoundStatus.REACHED:
            assert evaluation.decision is not None
            self._reach(decision=evaluation.decision, tally=evaluation.tally.support)
        elif evaluation.status is RoundStatus.FAILED:
            assert evaluation.reason is not None
            self._fail(reason=evaluation.reason.value, tally=evaluation.tally.support)
        return evaluation

    @event("ConsensusReached")
    def _reach(self, decision: str, tally: dict[str, float]) -> None:
        self.status = RoundStatus.REACHED
        self.decision = decision
        self.final_tally = tally

    @event("ConsensusFailed")
    def _fail(self, reason: str, tally: dict[str, float]) -> None:
        self.status = RoundStatus.FAILED
        self.failure_reason = reason
        self.final_tally = tally

    def recorded_outcome(self) -> Evaluation:
        """The evaluation as recorded (or the current one, while open and undecided)."""
        tally = tally_votes(self.round_rule, self.votes)
        reason = None if self.failure_reason is None else FailureReason(self.failure_reason)
        return Evaluation(self.status, tally, decision=self.decision, reason=reason)

    def check_can_vote(self, participant: str, now: datetime) -> None:
        """Refuse a vote after the decision, from an outsider, twice, or after the deadline."""
        reason = None
        if self.status is not RoundStatus.OPEN:
            reason = "round_decided"
        elif participant not in self.participants:
            reason = "not_a_participant"
        elif participant in self.votes:
            reason = "duplicate_vote"
        elif now >= self.deadline:
            reason = "deadline_passed"
        if reason is not None:
            raise VoteRejectedError(reason=reason, round_id=self.id, participant=participant)
