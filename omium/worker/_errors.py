"""Errors an attempt can end with, each naming its ``FailureDetected`` kind."""

from __future__ import annotations

from omium.kernel.errors import OmiumError


class StepAttemptError(OmiumError):
    """An attempt of a step failed; ``failure_kind`` is the ``FailureDetected`` category.

    Attributes:
        failure_kind: ``exception``, ``timeout``, ``budget_exceeded`` ...
        retryable: Whether running the step again may succeed.
    """

    failure_kind = "exception"
    retryable = True


class StepTimeoutError(StepAttemptError):
    """The attempt took longer than the step's timeout.

    Attributes:
        timeout_s: The timeout that was exceeded.
    """

    failure_kind = "timeout"

    def __init__(self, step_id: str, timeout_s: float) -> None:
        """Name the step and its timeout."""
        self.timeout_s = timeout_s
        super().__init__(f"step {step_id!r} took longer than its timeout of {timeout_s:g}s")


class StepCancelledError(StepAttemptError):
    """The attempt was abandoned (timed out, or the worker is stopping); its result is dropped."""


class BudgetExceededError(StepAttemptError):
    """The run crossed its budget (cost, tokens or LLM calls).

    Attributes:
        limit: Which limit: ``max_cost_usd``, ``max_tokens`` or ``max_llm_calls``.
        used: How much the run used.
        allowed: The limit.
    """

    failure_kind = "budget_exceeded"
    retryable = False

    def __init__(self, limit: str, used: float, allowed: float) -> None:
        """Name the limit, the usage and the allowance."""
        self.limit = limit
        self.used = used
        self.allowed = allowed
        super().__init__(f"run budget exceeded: {limit} used {used:g} of {allowed:g}")


class AgentOutputError(StepAttemptError):
    """The agent returned something that is not a JSON object (or JSON-serialisable)."""

    retryable = False


class ConsensusFailedError(StepAttemptError):
    """A consensus step's round ended without a decision (split, timeout, too few votes).

    Attributes:
        round_id: The round.
        reason: ``split``, ``timeout`` or ``insufficient_votes``.
        tally: Support per choice when it ended.
    """

    failure_kind = "consensus_failed"
    retryable = False

    def __init__(self, round_id: str, reason: str | None, tally: dict[str, float]) -> None:
        """Name the round, why it failed and its tally."""
        self.round_id = round_id
        self.reason = reason or "undecided"
        self.tally = tally
        super().__init__(f"consensus round {round_id} failed ({self.reason}); tally {tally}")
