"""Command handlers and queries for consensus rounds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from omium.commands._application import CommandApplication, check_tenant_id, command_handler
from omium.commands._result import Outcome
from omium.commands.consensus._rules import Evaluation
from omium.commands.consensus.domain import ConsensusRound


@dataclass(frozen=True)
class ConsensusRoundView:
    """A consensus round as queries return it.

    Attributes:
        status: ``open``, ``reached`` or ``failed``.
        tally: Support per choice: the final tally once decided, else the current one.
        version: The aggregate version (for ``expected_version``).
    """

    id: UUID
    tenant_id: str
    participants: tuple[str, ...]
    rule: str
    weights: dict[str, float] | None
    threshold: float | None
    k: int | None
    deadline: datetime
    subject: str | None
    execution_id: UUID | None
    votes: dict[str, str]
    status: str
    decision: str | None
    failure_reason: str | None
    tally: dict[str, float]
    version: int


class ConsensusApplication(CommandApplication):
    """Opens consensus rounds, takes votes and decides rounds.

    Handlers take the caller's ``tenant_id`` first, an ``idempotency_key`` (same key, same
    result, nothing written again) and, on an existing round, an ``expected_version``.
    """

    name = "Consensus"

    @command_handler
    def open_round(
        self,
        tenant_id: str,
        *,
        participants: list[str],
        rule: str,
        deadline: datetime,
        weights: dict[str, float] | None = None,
        threshold: float | None = None,
        k: int | None = None,
        subject: str | None = None,
        execution_id: UUID | None = None,
        round_id: UUID | None = None,
        now: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> ConsensusRound:
        """Open a round.

        Args:
            tenant_id: The caller's tenant.
            participants: Who may vote (unique ids).
            rule: ``majority``, ``unanimous``, ``weighted`` or ``k_of_n``.
            deadline: When voting closes (timezone-aware, in the future).
            weights: Per participant, ``weighted`` only.
            threshold: Share of the total weight needed, ``weighted`` only.
            k: Agreeing votes needed, ``k_of_n`` only.
            subject: What is being decided.
            execution_id: The run the round belongs to.
            round_id: The round's id (default: a new random one); a round that exists already
                makes this a conflict.
            now: The current time (default: the application's clock).
            idempotency_key: See the class docstring.

        Returns:
            A result whose ``aggregate_id`` is the new round's id.
        """
        return ConsensusRound.open_round(
            tenant_id=tenant_id,
            participants=participants,
            rule=rule,
            deadline=deadline,
            now=self.now(now),
            weights=weights,
            threshold=threshold,
            k=k,
            subject=subject,
            execution_id=execution_id,
            round_id=round_id,
        )

    @command_handler
    def cast_vote(
        self,
        tenant_id: str,
        round_id: UUID,
        *,
        participant: str,
        choice: str,
        rationale: str | None = None,
        now: datetime | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> ConsensusRound:
        """Count a participant's vote (once; before the deadline; while the round is open).

        Raises:
            VoteRejectedError: With a machine-readable ``reason``.
        """
        consensus_round = self._get(tenant_id, round_id, expected_version)
        consensus_round.cast_vote(participant, choice, rationale=rationale, now=self.now(now))
        return consensus_round

    @command_handler
    def decide_round(
        self,
        tenant_id: str,
        round_id: UUID,
        *,
        now: datetime | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome[ConsensusRound]:
        """Decide a round if its votes or its deadline allow it.

        Writes ``ConsensusReached`` or ``ConsensusFailed`` when the outcome is final; writes
        nothing while the round is still open or when it was already decided.

        Returns:
            A result whose ``data`` has ``status``, ``decision``, ``reason`` and ``tally``.
        """
        consensus_round = self._get(tenant_id, round_id, expected_version)
        evaluation = consensus_round.decide(now=self.now(now))
        return Outcome(consensus_round, outcome_data(evaluation))

    def get_round(self, tenant_id: str, round_id: UUID) -> ConsensusRoundView:
        """Return a round with its votes and outcome.

        Raises:
            NotFoundError: No such round for this tenant.
        """
        check_tenant_id(tenant_id)
        r = self._get(tenant_id, round_id)
        return ConsensusRoundView(
            id=r.id,
            tenant_id=r.tenant_id,
            participants=tuple(r.participants),
            rule=r.rule,
            weights=r.weights,
            threshold=r.threshold,
            k=r.k,
            deadline=r.deadline,
            subject=r.subject,
            execution_id=r.execution_id,
            votes=dict(r.votes),
            status=r.status.value,
            decision=r.decision,
            failure_reason=r.failure_reason,
            tally=dict(r.final_tally) or r.recorded_outcome().tally.support,
            version=r.version,
        )

    def _get(
        self, tenant_id: str, round_id: UUID, expected_version: int | None = None
    ) -> ConsensusRound:
        return self.load(ConsensusRound, tenant_id, round_id, expected_version=expected_version)


def outcome_data(evaluation: Evaluation) -> dict[str, Any]:
    """The JSON-compatible description of an evaluation, for ``CommandResult.data``."""
    return {
        "status": evaluation.status.value,
        "decision": evaluation.decision,
        "reason": None if evaluation.reason is None else evaluation.reason.value,
        "tally": evaluation.tally.support,
    }
