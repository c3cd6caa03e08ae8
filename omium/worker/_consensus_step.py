"""A consensus step: open a round, let every participant vote, wait for the decision.

The round is a ``ConsensusRound`` aggregate (``open_round`` with the run's id); each participant
agent runs with the step's context plus ``subject`` and ``choices`` and returns its choice, which
is cast as a vote. Deciding is the consensus processor's job (it tallies the votes as they reach
Kafka and decides as soon as the outcome is certain, or at the deadline); the step polls the round
until it is decided. If no decision arrives by the deadline plus a grace period (no consensus
processor running), the worker asks the aggregate to decide with the votes it recorded, so a round
never waits forever.

A step that runs again (its worker was killed, the run was taken over) finds the round it opened
before: the round's id is derived from the run, the step, the run's rollbacks and a sequence
number. A round that reached a decision is reused as it is (nobody is asked again, no model is
billed twice, no second decision); an open one is rejoined (only participants who have not voted
are asked); a failed one is final, so the retry opens the next round of the sequence. After a
rollback the subject may have changed, so rounds start again.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import structlog

from omium.commands import ConflictError, NotFoundError, VoteRejectedError
from omium.sdk.workflow import ConsensusSpec
from omium.streams.base import derived_id
from omium.worker._errors import ConsensusFailedError, StepTimeoutError

if TYPE_CHECKING:
    from omium.worker._attempt import Attempt
    from omium.worker._services import WorkerServices

log = structlog.get_logger(__name__)

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
    round_id, earlier = _round(services, attempt, spec)
    reasons: dict[str, str] = {}
    if earlier is None or earlier.status == "open":
        voted = set() if earlier is None else set(earlier.votes)
        pending = [p for p in spec.participants if p not in voted]
        _, reasons = _collect_votes(services, attempt, spec, round_id, vote, pending)
    else:
        log.info("consensus.round_reused", round_id=str(round_id), status=earlier.status)
    decided = _await_decision(services, attempt, round_id, spec)
    if decided.status != "reached":
        raise ConsensusFailedError(str(round_id), decided.failure_reason, dict(decided.tally))
    votes = dict(decided.votes)
    return {
        "decision": decided.decision,
        "round_id": str(round_id),
        "rule": spec.rule,
        "tally": dict(decided.tally),
        "votes": votes,
        "reasons": reasons,
    }


def _round(services: WorkerServices, attempt: Attempt, spec: ConsensusSpec) -> tuple[UUID, Any]:
    """The step's round: ``(id, None)`` for one opened now, else ``(id, its view)``."""
    consensus, tenant = services.apps.consensus, attempt.run.tenant_id
    run, step = attempt.execution_id, attempt.step.id
    for sequence in itertools.count():
        round_id = derived_id("omium.worker.consensus", run, step, attempt.run.rollbacks, sequence)
        try:
            view = consensus.get_round(tenant, round_id)
        except NotFoundError:
            try:
                return _open(services, attempt, spec, round_id), None
            except ConflictError:  # another worker opened it a moment ago
                view = consensus.get_round(tenant, round_id)
        if view.status != "failed":
            return round_id, view
    raise AssertionError("unreachable")  # pragma: no cover - itertools.count() never ends


def _open(services: WorkerServices, attempt: Attempt, spec: ConsensusSpec, round_id: UUID) -> UUID:
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
        round_id=round_id,
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
    participants: list[str],
) -> tuple[dict[str, str], dict[str, str]]:
    if not participants:
        return {}, {}
    extra = {"subject": spec.subject, "choices": spec.choices}
    with ThreadPoolExecutor(max_workers=len(participants)) as pool:
        futures = {p: pool.submit(vote, p, dict(extra)) for p in participants}
    votes: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for participant, future in futures.items():
        try:
            output = future.result()
        except Exception as exc:  # one voter failing is an abstention, not a failed step
            log.warning("consensus.no_vote", participant=participant, error=str(exc))
            continue
        choice = _choice_of(output)
        if choice is None or (spec.choices is not None and choice not in spec.choices):
            log.warning("consensus.invalid_choice", participant=participant, output=repr(output))
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
        log.warning("consensus.vote_rejected", participant=participant, error=str(exc))
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
