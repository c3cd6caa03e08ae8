"""A run's LLM usage (cost, tokens, calls) in Redis, checked against the workflow's budget.

Every worker adds each call of a run to one Redis hash, so the run's totals are right however many
workers its steps ran on. A call is refused when the run already spent its budget, and the call
that crosses a limit fails its step (``budget_exceeded``): a budget halts, it does not only alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omium.sdk.providers import Completion
from omium.sdk.workflow import Budget
from omium.worker._errors import BudgetExceededError

USAGE_TTL_S = 7 * 24 * 3600
"""How long a run's usage counters are kept after its last call."""


@dataclass(frozen=True)
class Usage:
    """What a run spent on LLM calls so far."""

    cost_usd: float = 0.0
    tokens: int = 0
    calls: int = 0


class RunBudget:
    """The usage counters of one run and the budget they are held to.

    Args:
        client: A ``redis.Redis`` client.
        prefix: Key prefix (the topic prefix).
        execution_id: The run.
        budget: The workflow's ``policies.budget`` (``None``: count, never refuse).
    """

    def __init__(
        self, client: Any, *, prefix: str, execution_id: str, budget: Budget | None
    ) -> None:
        """Count under ``<prefix>:run:<execution id>:usage``."""
        self._redis = client
        self._key = f"{prefix}:run:{execution_id}:usage"
        self.budget = budget

    def usage(self) -> Usage:
        """The run's totals so far."""
        raw = self._redis.hgetall(self._key)
        values = {k.decode(): v.decode() for k, v in raw.items()}
        return Usage(
            cost_usd=float(values.get("cost_usd", 0.0)),
            tokens=int(values.get("tokens", 0)),
            calls=int(values.get("calls", 0)),
        )

    def check(self) -> None:
        """Refuse another call when the run already reached a limit.

        Raises:
            BudgetExceededError: A limit is reached (and the budget halts rather than warns).
        """
        self._enforce(self.usage(), reached_is_over=True)

    def add(self, completion: Completion) -> Usage:
        """Count one call; raise if it took the run over a limit.

        Raises:
            BudgetExceededError: The call crossed a limit (and the budget halts).
        """
        pipe = self._redis.pipeline()
        pipe.hincrbyfloat(self._key, "cost_usd", completion.cost_usd)
        pipe.hincrby(self._key, "tokens", completion.total_tokens)
        pipe.hincrby(self._key, "calls", 1)
        pipe.expire(self._key, USAGE_TTL_S)
        cost, tokens, calls, _ = pipe.execute()
        usage = Usage(float(cost), int(tokens), int(calls))
        self._enforce(usage, reached_is_over=False)
        return usage

    def _enforce(self, usage: Usage, *, reached_is_over: bool) -> None:
        budget = self.budget
        if budget is None or budget.on_exceed != "halt":
            return
        limits = (
            ("max_cost_usd", usage.cost_usd, budget.max_cost_usd),
            ("max_tokens", usage.tokens, budget.max_tokens),
            ("max_llm_calls", usage.calls, budget.max_llm_calls),
        )
        for name, used, allowed in limits:
            if allowed is None:
                continue
            # Before a call, reaching a limit is enough to refuse (one more call would cross it,
            # except for cost, where reaching it means nothing is left); after a call, only
            # crossing it fails the step.
            over = used >= allowed if reached_is_over else used > allowed
            if over:
                raise BudgetExceededError(name, used, allowed)
