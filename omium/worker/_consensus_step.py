"""A consensus step: open a round, let every participant vote, wait for the decision.

The round is a ``ConsensusRound`` aggregate (``open_round`` with the run's id); each participant
agent runs with the step's context plus ``subject`` and ``choices`` and returns its choice, which
is cast as a vote. Deciding is the consensus processor's job (it tallies the votes as they reach
Kafka and decides as soon as the outcome is certain, or at the deadline); the step polls the round
until it is decided. If no decision arrives by the deadline plus a grace period (no consensus
processor running), the worker asks the aggregate to decide with the votes it recorded, so a round
never waits forever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from commands import VoteRejectedError
from omium.sdk.workflow import ConsensusSpec
from omium.worker._errors import ConsensusFailedError, StepTimeoutError

if TYPE_CHECKING:
    from omium.worker._attempt import Attempt
    from omium.worker._services import WorkerServices

log = logging.getLogger(__name__)

Vote = Callable[[str, dict[str, Any]], dict[str, Any]]
"""Runs one participant agent with extra input and returns its output."""


def run_consensus(services: WorkerServices, attempt: Attempt, vote: Vote) -> dict[str, Any]:
    """Run a consensus step to its decision; return the step's output.

    Raises:
        ConsensusFailedError: The round ended without a decision.
        StepTimeoutError: The step's own timeout passed first.
    """
    spec = attempt.step.consensus
    assert spec is not None
    round_id = _open(services, attempt, spec)
    votes, reasons = _collect_votes(services, attempt, spec, round_id, vote)
    decided = _await_decision(services, attempt, round_id, spec)
    if decided.status != "reached":
        raise ConsensusFailedError(str(round_id), decided.failure_reason, dict(decided.tally))
    return {
        "decision": decided.decision,
        "round_id": str(round_id),
        "rule": spec.rule,
        "tally": dict(decided.tally),
        "votes": votes,
        "reasons": reasons,
    }


def _open(services: WorkerServices, attempt: Attempt, spec: ConsensusSpec) -> UUID:
    deadline = datetime.now(UTC) + timedelta(seconds=spec.deadline_s)
    result = services.apps.consensus.open_round(
        attempt.run.tenant_id,
        participants=list(spec.participants),
        rule=spec.rule,
        deadline=deadline,
        weights=spec.weights,
        threshold=spec.threshold,
        k=spec.k,
        subject=spec.subject,
        execution_id=attempt.execution_id,
        idempotency_key=attempt.key("round"),
    )
    attempt.span.attributes["round_id"] = str(result.aggregate_id)
    return result.aggregate_id


def _collect_votes(
    services: WorkerServices,
    attempt: Attempt,
    spec: ConsensusSpec,
    round_id: UUID,
    vote: Vote,
) -> tuple[dict[str, str], dict[str, str]]:
    extra = {"subject": spec.subject, "choices": spec.choices}
    with ThreadPoolExecutor(max_workers=len(spec.participants)) as pool:
        futures = {p: pool.submit(vote, p, dict(extra)) for p in spec.participants}
    votes: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for participant, future in futures.items():
        try:
            output = future.result()
        except Exception as exc:  # one voter failing is an abstention, not a failed step
            log.warning("participant %s did not vote: %s", participant, exc)
            continue
        choice = _choice_of(output)
        if choice is None or (spec.choices is not None and choice not in spec.choices):
            log.warning("participant %s gave no valid choice: %r", participant, output)
            continue
        reason = str(output.get("reason") or output.get("rationale") or "")
        if _cast(services, attempt, round_id, participant, choice, reason):
            votes[participant] = choice
            reasons[participant] = reason
    return votes, reasons


def _cast(
    services: WorkerServices,
    attempt: Attempt,
    round_id: UUID,
    participant: str,
    choice: str,
    reason: str,
) -> bool:
    try:
        services.apps.consensus.cast_vote(
            attempt.run.tenant_id,
            round_id,
            participant=participant,
            choice=choice,
            rationale=reason or None,
            idempotency_key=attempt.key("vote", participant),
        )
    except VoteRejectedError as exc:
        log.warning("vote of %s rejected: %s", participant, exc)
        return False
    return True


def _await_decision(
    services: WorkerServices, attempt: Attempt, round_id: UUID, spec: ConsensusSpec
) -> Any:
    tenant = attempt.run.tenant_id
    consensus = services.apps.consensus
    give_up = time.monotonic() + spec.deadline_s + services.consensus_grace_s
    while True:
        view = consensus.get_round(tenant, round_id)
        if view.status != "open":
            return view
        now = time.monotonic()
        if now >= attempt.deadline:
            attempt.cancel.set()
            raise StepTimeoutError(attempt.step.id, attempt.definition.timeout_for(attempt.step))
        if now >= give_up:
            # No consensus processor decided it: the aggregate decides with its own votes.
            consensus.decide_round(tenant, round_id, idempotency_key=attempt.key("decide"))
            return consensus.get_round(tenant, round_id)
        time.sleep(services.consensus_poll_s)


def _choice_of(output: dict[str, Any]) -> str | None:
    for key in ("choice", "decision", "vote", "text"):
        value = output.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
