"""``/api/v1/consensus/rounds``: open consensus rounds, cast votes, decide, read them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, status
from pydantic import AwareDatetime, BaseModel, Field, StrictFloat

from omium.commands import CommandResult
from omium.commands.consensus import ConsensusRoundView
from omium.gateway._openapi import created, link, problems
from omium.gateway._policy import requires
from omium.gateway._principal import Role
from omium.gateway.api._models import (
    EmptyRequest,
    EventNames,
    Identifier,
    RequestModel,
    Text,
    VersionAfter,
    VersionedRequest,
    accepted_fields,
    location,
    sorted_mapping,
)
from omium.gateway.api._support import Create, Read, Update

router = APIRouter(prefix="/consensus/rounds", tags=["consensus"])

_NEW_ROUND = "$response.body#/round_id"

MAX_PARTICIPANTS = 1_000

Weight = Annotated[StrictFloat, Field(gt=0, le=1e12)]


class OpenRound(RequestModel):
    """A decision several participants vote on."""

    participants: list[Identifier] = Field(
        min_length=1, max_length=MAX_PARTICIPANTS, description="Who may vote (unique ids)."
    )
    rule: Literal["majority", "unanimous", "weighted", "k_of_n"]
    deadline: AwareDatetime = Field(description="Voting closes then (with a timezone; future).")
    weights: dict[Identifier, Weight] | None = Field(
        default=None,
        max_length=MAX_PARTICIPANTS,
        description="weighted only: a positive weight per participant.",
    )
    threshold: StrictFloat | None = Field(
        default=None, gt=0, le=1, description="weighted only: share of the total weight needed."
    )
    k: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=MAX_PARTICIPANTS,
        description="k_of_n only: agreeing votes needed.",
    )
    subject: Text | None = Field(default=None, description="What is being decided.")
    execution_id: UUID | None = Field(default=None, description="The run it belongs to.")


class CastVote(VersionedRequest):
    """One participant's vote."""

    participant: Identifier
    choice: Identifier
    rationale: Text | None = None


class RoundAccepted(BaseModel):
    """An opened round or a counted vote."""

    round_id: UUID
    version: VersionAfter
    events: EventNames

    @classmethod
    def of(cls, result: CommandResult) -> RoundAccepted:
        """The answer for a command result."""
        return cls(round_id=result.aggregate_id, **accepted_fields(result))


class RoundDecision(RoundAccepted):
    """The outcome of deciding a round (``open`` while votes may still change it)."""

    status: str = Field(description="open, reached or failed.")
    decision: str | None = Field(description="The chosen option, once reached.")
    reason: str | None = Field(description="timeout, split or insufficient_votes, once failed.")
    tally: dict[str, float] = Field(description="Support per choice.")

    @classmethod
    def of(cls, result: CommandResult) -> RoundDecision:
        """The answer for a ``decide_round`` result."""
        data = result.data
        return cls(
            round_id=result.aggregate_id,
            **accepted_fields(result),
            status=data["status"],
            decision=data["decision"],
            reason=data["reason"],
            tally=sorted_mapping(data["tally"]),
        )


class ConsensusRound(BaseModel):
    """A consensus round with its votes and outcome."""

    round_id: UUID
    participants: list[str]
    rule: str
    weights: dict[str, float] | None
    threshold: float | None
    k: int | None
    deadline: datetime
    subject: str | None
    execution_id: UUID | None
    votes: dict[str, str] = Field(description="Participant -> choice.")
    status: str = Field(description="open, reached or failed.")
    decision: str | None
    failure_reason: str | None
    tally: dict[str, float]
    version: int = Field(description="Aggregate version (the ETag), for If-Match.")

    @classmethod
    def of(cls, view: ConsensusRoundView) -> ConsensusRound:
        """The answer for a round view."""
        return cls(
            round_id=view.id,
            participants=list(view.participants),
            rule=view.rule,
            weights=view.weights,
            threshold=view.threshold,
            k=view.k,
            deadline=view.deadline,
            subject=view.subject,
            execution_id=view.execution_id,
            votes=view.votes,
            status=view.status,
            decision=view.decision,
            failure_reason=view.failure_reason,
            tally=view.tally,
            version=view.version,
        )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RoundAccepted,
    summary="Open a consensus round",
    dependencies=[requires(Role.DEVELOPER, command="consensus.open_round")],
    responses=created(
        "The round was opened.",
        GetRound=link("/consensus/rounds/{round_id}", round_id=_NEW_ROUND),
        CastVote=link("/consensus/rounds/{round_id}/votes", "post", round_id=_NEW_ROUND),
        DecideRound=link("/consensus/rounds/{round_id}/decide", "post", round_id=_NEW_ROUND),
    ),
)
async def open_round(body: OpenRound, call: Create) -> RoundAccepted:
    """Open a round; weights and threshold go with ``weighted`` only, k with ``k_of_n`` only."""
    result = await call.create(
        call.apps.consensus.open_round,
        lambda rid: location("consensus/rounds", rid),
        participants=list(body.participants),
        rule=body.rule,
        deadline=body.deadline,
        weights=body.weights,
        threshold=body.threshold,
        k=body.k,
        subject=body.subject,
        execution_id=body.execution_id,
    )
    return RoundAccepted.of(result)


@router.get(
    "/{round_id}",
    response_model=ConsensusRound,
    summary="Read a consensus round",
    dependencies=[requires(Role.VIEWER)],
)
async def get_round(round_id: UUID, call: Read) -> ConsensusRound:
    """A round with its votes, tally and outcome."""
    return ConsensusRound.of(await call.run(call.apps.consensus.get_round, round_id))


@router.post(
    "/{round_id}/votes",
    response_model=RoundAccepted,
    summary="Cast a vote",
    dependencies=[requires(Role.DEVELOPER, command="consensus.cast_vote")],
    responses=problems(409),
)
async def cast_vote(round_id: UUID, body: CastVote, call: Update) -> RoundAccepted:
    """Count a participant's vote (once, before the deadline, while open; else 409)."""
    result = await call.update(
        call.apps.consensus.cast_vote,
        round_id,
        body,
        participant=body.participant,
        choice=body.choice,
        rationale=body.rationale,
    )
    return RoundAccepted.of(result)


@router.post(
    "/{round_id}/decide",
    response_model=RoundDecision,
    summary="Decide a round if its votes or its deadline allow it",
    dependencies=[requires(Role.DEVELOPER, command="consensus.decide_round")],
    responses=problems(409),
)
async def decide_round(
    round_id: UUID, call: Update, body: EmptyRequest | None = None
) -> RoundDecision:
    """Record the outcome once it is final.

    While the round is still open nothing is written and the answer says ``open``; deciding a
    decided round answers its recorded outcome.
    """
    result = await call.update(call.apps.consensus.decide_round, round_id, body)
    return RoundDecision.of(result)
