"""The consensus processor: tallies votes per round and decides on quorum or at the deadline.

Inputs (``<prefix>.consensus``, keyed by round id): ``ConsensusRoundOpened``, ``VoteCast``, and
the aggregate's own ``ConsensusReached``/``ConsensusFailed`` (a round decided elsewhere is closed
without output). Outputs: ``ConsensusReached`` or ``ConsensusFailed`` once per round,
``VoteRejected`` per refused vote, and a ``consensus.decide_round`` command on
``<prefix>.commands`` so the ConsensusRound aggregate records the same outcome.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from omium.commands.consensus import Evaluation, RoundStatus, evaluate
from omium.streams.base import (
    Context,
    Processor,
    StateTable,
    command_event,
    derived_id,
    output_event,
)
from omium.streams.consensus import _mapping as m

ROUNDS = "rounds"
_REJECTED_IDS_KEPT = 1000


class UnknownRoundError(ValueError):
    """A vote names a round the processor never saw opened (the message is dead-lettered)."""


class ConsensusProcessor(Processor):
    """Decides consensus rounds exactly once.

    Args:
        deadline_grace: How long after a deadline the timer waits before deciding, so votes cast
            just before it (still on their way through the relay) are counted.
    """

    name = "consensus"
    tables = (ROUNDS,)

    def __init__(self, *, deadline_grace: timedelta = timedelta(seconds=1)) -> None:
        """Start with no deadlines known; they are loaded as partitions are assigned."""
        self._grace = deadline_grace
        self._deadlines: dict[int, list[tuple[datetime, str]]] = {}

    def input_areas(self) -> Sequence[str]:
        """Consensus events only."""
        return ["consensus"]

    # ------------------------------------------------------------------ events

    def handle(self, ctx: Context) -> None:
        """Open rounds, judge votes, close rounds decided by the aggregate."""
        event = ctx.event
        assert event is not None
        kind = event["event_type"]
        if kind == "ConsensusRoundOpened":
            self._open(ctx, event)
        elif kind == "VoteCast":
            self._vote(ctx, m.vote_of(event), event)
        elif kind in ("ConsensusReached", "ConsensusFailed"):
            self._closed_elsewhere(ctx, event)
        # VoteRejected, and the processor's own outputs, need nothing.

    def _open(self, ctx: Context, event: dict[str, Any]) -> None:
        round_id = str(event["aggregate_id"])
        if ctx.get(ROUNDS, round_id) is not None:
            return  # redelivered
        state = m.new_round(event)
        ctx.put(ROUNDS, round_id, state)
        heapq.heappush(
            self._deadlines.setdefault(ctx.partition, []), (m.deadline_of(state), round_id)
        )

    def _vote(self, ctx: Context, vote: m.Vote, event: dict[str, Any]) -> None:
        state = ctx.get(ROUNDS, vote.round_id)
        if state is None:
            raise UnknownRoundError(f"vote for unknown round {vote.round_id}")
        if event["tenant_id"] != state["tenant_id"]:
            raise UnknownRoundError(f"vote from another tenant for round {vote.round_id}")
        if vote.event_id in state["vote_ids"] or vote.event_id in state["rejected_ids"]:
            return  # the same vote delivered again: already counted or refused
        reason = self._refusal(state, vote)
        if reason is not None:
            self._reject(ctx, state, vote, reason)
            return
        state["votes"][vote.voter] = vote.decision
        state["vote_ids"].append(vote.event_id)
        evaluation = evaluate(m.round_rule(state), state["votes"], deadline_passed=False)
        if evaluation.status is not RoundStatus.OPEN:
            self._decide(
                ctx, vote.round_id, state, evaluation, at=vote.cast_at, cause=vote.event_id
            )
        ctx.put(ROUNDS, vote.round_id, state)

    @staticmethod
    def _refusal(state: dict[str, Any], vote: m.Vote) -> str | None:
        if state["status"] != "open" or vote.cast_at >= m.deadline_of(state):
            return "round_closed"
        if vote.voter not in state["participants"]:
            return "not_participant"
        if vote.voter in state["votes"]:
            return "duplicate"
        return None

    def _reject(self, ctx: Context, state: dict[str, Any], vote: m.Vote, reason: str) -> None:
        state["rejected_ids"] = [*state["rejected_ids"], vote.event_id][-_REJECTED_IDS_KEPT:]
        ctx.put(ROUNDS, vote.round_id, state)
        event_id = derived_id("consensus", vote.event_id, "rejected")
        rejected = output_event(
            "VoteRejected",
            event_id=event_id,
            tenant_id=state["tenant_id"],
            payload=m.rejected_payload(vote, reason),
            occurred_at=ctx.now,
            causation_id=vote.event_id,
            correlation_id=vote.round_id,
        )
        ctx.emit(rejected, key=vote.round_id)

    def _closed_elsewhere(self, ctx: Context, event: dict[str, Any]) -> None:
        round_id = str(event["aggregate_id"])
        state = ctx.get(ROUNDS, round_id)
        if state is None or state["status"] != "open":
            return  # one of our own outputs, or a round we already decided
        state["status"] = "reached" if event["event_type"] == "ConsensusReached" else "failed"
        state["decided_by"] = "aggregate"
        ctx.put(ROUNDS, round_id, state)

    # ------------------------------------------------------------------ timers

    def on_tick(self, ctx: Context) -> None:
        """Decide every round of the partition whose deadline (plus grace) has passed.

        A round decided here stays in the heap until a later tick finds it decided in the
        table: the decision is only a write of this tick's transaction, and if that aborts the
        table is rolled back (the round is open again) and the next tick must decide it again.
        """
        heap = self._deadlines.get(ctx.partition, [])
        due: list[tuple[datetime, str]] = []
        while heap and heap[0][0] + self._grace <= ctx.now:
            due.append(heapq.heappop(heap))
        for deadline, round_id in due:
            state = ctx.get(ROUNDS, round_id)
            if state is None or state["status"] != "open":
                continue  # decided (and committed) before: done with it
            evaluation = evaluate(m.round_rule(state), state["votes"], deadline_passed=True)
            self._decide(ctx, round_id, state, evaluation, at=deadline, cause=None)
            ctx.put(ROUNDS, round_id, state)
            heapq.heappush(heap, (deadline, round_id))  # until the decision is committed

    def on_assigned(self, partition: int, tables: dict[str, StateTable]) -> None:
        """Load the deadlines of the partition's open rounds."""
        heap = [
            (m.deadline_of(state), round_id)
            for round_id, state in tables[ROUNDS].items(partition)
            if state["status"] == "open"
        ]
        heapq.heapify(heap)
        self._deadlines[partition] = heap

    def on_revoked(self, partition: int) -> None:
        """Forget the partition's deadlines."""
        self._deadlines.pop(partition, None)

    # ------------------------------------------------------------------ decisions

    def _decide(
        self,
        ctx: Context,
        round_id: str,
        state: dict[str, Any],
        evaluation: Evaluation,
        *,
        at: datetime,
        cause: str | None,
    ) -> None:
        reached = evaluation.status is RoundStatus.REACHED
        state["status"] = evaluation.status.value
        state["decided_by"] = "processor"
        event_type = "ConsensusReached" if reached else "ConsensusFailed"
        payload = (
            m.reached_payload(state, evaluation) if reached else m.failed_payload(state, evaluation)
        )
        decision = output_event(
            event_type,
            event_id=derived_id("consensus", round_id, "decision"),
            tenant_id=state["tenant_id"],
            payload=payload,
            occurred_at=at,
            causation_id=cause,
            correlation_id=round_id,
        )
        ctx.emit(decision, key=round_id)
        command = command_event(
            "consensus.decide_round",
            command_id=derived_id("consensus", round_id, "decide"),
            tenant_id=state["tenant_id"],
            target_id=round_id,
            args={"now": at.isoformat()},
            issued_by="streams.consensus",
            occurred_at=ctx.now,
            reason=f"{event_type}: {payload.get('decision') or payload.get('reason')}",
            causation_id=str(decision["event_id"]),
            correlation_id=round_id,
        )
        ctx.emit(command, key=round_id)
