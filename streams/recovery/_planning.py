"""Pure recovery planning: failure signatures, backoff, and the choice of a plan.

Nothing here touches Kafka or state; the processor feeds it the counts and the learned outcomes
it keeps (see :mod:`omium.streams.recovery._learning` for the learning rule).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from omium.streams.recovery._learning import ActionStats, action_key, choose

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX = re.compile(r"\b(?:0x)?[0-9a-f]{8,}\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_SPACE = re.compile(r"\s+")

RETRYABLE = frozenset({"exception", "timeout"})
"""Kinds worth retrying as they are: the same attempt may well succeed next time."""
WRONG_ANSWER = frozenset({"postcondition_failed", "hallucination"})
"""Kinds where the agent produced a bad result: try another agent/model, or an earlier state."""
NOT_RETRYABLE_ERRORS = frozenset(
    {
        "ContextTooLongError",
        "RefusalError",
        "ProviderRequestError",
        "NoScriptedResponseError",
        "CorruptCheckpointError",
        "EntrypointError",
    }
)
"""``error_type`` details (exception class names) that the same call raises again: not retried.

The provider errors of :mod:`omium.sdk.providers` a retry cannot fix (a prompt over the context
window, a refusal, a bad request), a checkpoint that fails its checksum and code that cannot be
loaded. A detector can also say ``retryable: "false"`` in the details.
"""


@dataclass(frozen=True)
class RecoverySettings:
    """A workflow's recovery settings (defaults, overridden per failure by its details).

    Attributes:
        max_retries: Retries of a step (for retryable kinds) before trying something else.
        backoff_ms: Delay before the first retry; doubled each retry.
        max_backoff_ms: Upper bound of the delay.
        fallback_agent: Agent to hand the step to when retrying no longer helps.
        fallback_model: Model to fall back to.
        escalate_after_similar: Escalate once this many earlier failures (any run) share the
            signature: a systemic fault a retry will not fix (unless an action is learned to
            fix it).
        max_attempts: Attempts of a step after which the run is aborted.
        learn: Choose among the applicable actions by their observed success for the
            signature (else always the configured rules' plan).
        learn_min_tries: Outcomes an action needs before its success rate counts.
        explore_below: A default action whose success rate is below this makes the planner try
            the alternatives it does not know yet.
        explore_every: Every n-th plan of a signature tries the least-tried alternative (0:
            never).
    """

    max_retries: int = 3
    backoff_ms: int = 1000
    max_backoff_ms: int = 60_000
    fallback_agent: str | None = None
    fallback_model: str | None = None
    escalate_after_similar: int = 5
    max_attempts: int = 8
    learn: bool = True
    learn_min_tries: int = 2
    explore_below: float = 0.5
    explore_every: int = 10

    def overridden(self, details: Mapping[str, str]) -> RecoverySettings:
        """These settings with ``recovery.<field>`` entries of a failure's details applied."""
        changes: dict[str, Any] = {}
        for name in (
            "max_retries",
            "backoff_ms",
            "max_backoff_ms",
            "escalate_after_similar",
            "max_attempts",
            "learn_min_tries",
            "explore_every",
        ):
            if (value := details.get(f"recovery.{name}")) is not None and value.isdigit():
                changes[name] = int(value)
        if (value := details.get("recovery.learn")) in ("true", "false"):
            changes["learn"] = value == "true"
        if (value := details.get("recovery.explore_below")) is not None:
            with contextlib.suppress(ValueError):
                changes["explore_below"] = min(max(float(value), 0.0), 1.0)
        for name in ("fallback_agent", "fallback_model"):
            if details.get(f"recovery.{name}"):
                changes[name] = details[f"recovery.{name}"]
        return replace(self, **changes)


@dataclass(frozen=True)
class Plan:
    """What to do about one failure.

    Attributes:
        action: ``retry``, ``rollback``, ``fallback``, ``escalate`` or ``abort``.
        reason: Why, for people.
        backoff_ms: Delay before a retry.
        checkpoint_id: Checkpoint to roll back to.
        fallback_agent: Agent to hand the step to.
        fallback_model: Model to hand the step to.
        decided_by: ``rule`` (the configured rules), ``learned`` or ``explore``.
        default_key: The action key the rules alone chose (None when no choice was made).
        statistics: The learned outcomes the choice compared, one per applicable action.
    """

    action: str
    reason: str
    backoff_ms: int | None = None
    checkpoint_id: str | None = None
    fallback_agent: str | None = None
    fallback_model: str | None = None
    decided_by: str = "rule"
    default_key: str | None = None
    statistics: tuple[ActionStats, ...] = field(default=())

    @property
    def key(self) -> str:
        """The action key its outcome is learned under (see :func:`action_key`)."""
        return action_key(
            self.action, fallback_agent=self.fallback_agent, fallback_model=self.fallback_model
        )


def normalise_message(message: str) -> str:
    """A failure message with its variable parts (ids, numbers, quoted values) blanked."""
    text = message.lower()
    for pattern, token in ((_UUID, "<id>"), (_QUOTED, "<v>"), (_HEX, "<hex>"), (_NUMBER, "<n>")):
        text = pattern.sub(token, text)
    return _SPACE.sub(" ", text).strip()[:200]


def signature(*, workflow: str | None, step: str | None, kind: str, message: str) -> str:
    """The signature failures are grouped by: workflow, step, kind and normalised message."""
    text = "|".join((workflow or "-", step or "-", kind, normalise_message(message)))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def backoff_ms(settings: RecoverySettings, retry: int) -> int:
    """Delay before retry number ``retry`` (1-based): exponential, capped."""
    return min(settings.max_backoff_ms, settings.backoff_ms * (1 << max(retry - 1, 0)))


def plan(
    kind: str,
    *,
    attempts: int,
    similar: int,
    settings: RecoverySettings,
    checkpoint_id: str | None,
    stats: Mapping[str, ActionStats] | None = None,
    retryable: bool = True,
) -> Plan:
    """Choose a plan for a failure.

    Args:
        kind: The failure kind.
        attempts: Failures of this step in this run so far, this one included.
        similar: Earlier failures with the same signature, in any run.
        settings: The workflow's recovery settings.
        checkpoint_id: The run's last good checkpoint, if any.
        stats: Learned outcomes for the failure's signature by action key (None: no learning).
        retryable: Whether the same attempt may succeed again (False for the errors in
            :data:`NOT_RETRYABLE_ERRORS`).
    """
    if kind == "budget_exceeded":
        return Plan("abort", "the run's budget is spent; retrying would spend more")
    if attempts >= settings.max_attempts:
        return Plan("abort", f"step failed {attempts} times (max {settings.max_attempts})")
    if kind in ("policy_violation", "consensus_failed"):
        return Plan("escalate", f"{kind} needs a human decision")
    retry = _retry(kind, attempts, settings, retryable)
    if similar >= settings.escalate_after_similar:
        default = Plan("escalate", f"{similar} earlier failures share this signature: systemic")
    elif retry is not None:
        default = retry
    else:
        default = _after_retries(kind, attempts, settings, checkpoint_id)
    if stats is None or not settings.learn:
        return default
    candidates = [default]
    others = (retry, _fallback(kind, attempts, settings), _rollback(kind, attempts, checkpoint_id))
    for option in others:
        if option is not None and all(option.key != c.key for c in candidates):
            candidates.append(option)
    return choose(default, candidates, stats, settings=settings, plans_made=similar)


def _retry(kind: str, attempts: int, settings: RecoverySettings, retryable: bool) -> Plan | None:
    if kind not in RETRYABLE or not retryable or attempts > settings.max_retries:
        return None
    delay = backoff_ms(settings, attempts)
    return Plan("retry", f"{kind}: retry {attempts} of {settings.max_retries}", backoff_ms=delay)


def _fallback(kind: str, attempts: int, settings: RecoverySettings) -> Plan | None:
    if not (settings.fallback_agent or settings.fallback_model):
        return None
    return Plan(
        "fallback",
        f"{kind} after {attempts} attempt(s): hand the step to the fallback",
        fallback_agent=settings.fallback_agent,
        fallback_model=settings.fallback_model,
    )


def _rollback(kind: str, attempts: int, checkpoint_id: str | None) -> Plan | None:
    if checkpoint_id is None:
        return None
    return Plan(
        "rollback",
        f"{kind} after {attempts} attempt(s): resume from the last good checkpoint",
        checkpoint_id=checkpoint_id,
    )


def _after_retries(
    kind: str, attempts: int, settings: RecoverySettings, checkpoint_id: str | None
) -> Plan:
    chosen = _fallback(kind, attempts, settings) or _rollback(kind, attempts, checkpoint_id)
    if chosen is not None:
        return chosen
    return Plan("escalate", f"{kind} after {attempts} attempt(s) and nothing else to try")


def retryable_failure(details: Mapping[str, str]) -> bool:
    """Whether a failure's details allow retrying it as it is (see :data:`NOT_RETRYABLE_ERRORS`)."""
    if details.get("retryable") == "false":
        return False
    return details.get("error_type") not in NOT_RETRYABLE_ERRORS
